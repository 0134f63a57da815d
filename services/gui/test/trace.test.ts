// The waterfall and stage timings of a trace, from a trace the running system really
// produced (a CREATE through the gateway, recorded from Jaeger's query API into
// test/fixtures/create-trace.json), and what the trace route's answers mean.
import { describe, expect, it } from "vitest";
import { classify, stages, waterfall, type Bar, type JaegerTrace } from "../src/trace";
import fixture from "./fixtures/create-trace.json";

const recorded = fixture as unknown as { data: JaegerTrace[] };
const trace = recorded.data[0];

describe("waterfall", () => {
  const w = waterfall(trace)!;

  it("groups the spans by service in the order a command travels", () => {
    expect(w.traceId).toBe(trace.traceID);
    expect(w.groups.map((g) => g.service)).toEqual(["producer", "persister", "notifier"]);
    expect(w.groups.reduce((n, g) => n + g.bars.length, 0)).toBe(trace.spans.length);
  });

  it("keeps each span's kind and orders a lane's spans by start", () => {
    const kinds = Object.fromEntries(w.groups.map((g) => [g.service, g.bars.map((b) => b.kind)]));
    expect(kinds.producer).toEqual(["server", "producer"]);
    expect(kinds.persister).toEqual(["consumer", "client"]);
    expect(kinds.notifier).toEqual(["consumer", "internal"]);
    for (const group of w.groups) {
      const starts = group.bars.map((b) => b.start);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    }
  });

  it("measures from the first span, in milliseconds, and nests within a service", () => {
    const server = w.groups[0].bars[0];
    expect(server.start).toBe(0);
    expect(w.start).toBe(Math.min(...trace.spans.map((s) => s.startTime)) / 1000);
    const ends = w.groups.flatMap((g) => g.bars.map((b) => b.start + b.duration));
    expect(w.total).toBeCloseTo(Math.max(...ends), 6);
    // The publish is a child of the request; each consumer span starts its own lane at 0.
    expect(w.groups[0].bars.map((b) => b.depth)).toEqual([0, 1]);
    expect(w.groups[1].bars.map((b) => b.depth)).toEqual([0, 1]);
  });

  it("finds the four stages in order", () => {
    const s = w.stages;
    for (const value of [s.accepted, s.inKafka, s.persisted, s.notified]) {
      expect(value).toBeGreaterThanOrEqual(0);
    }
    const publish = w.groups[0].bars[1];
    expect(s.persisted!).toBeGreaterThan(publish.start);
    expect(s.notified!).toBeGreaterThan(publish.start);
    const write = w.groups[1].bars[1];
    expect(s.persisted).toBeCloseTo(write.start + write.duration, 6);
  });

  it("has nothing to show for a trace without spans", () => {
    expect(waterfall({ ...trace, spans: [] })).toBeUndefined();
  });
});

describe("stages", () => {
  const bar = (over: Partial<Bar>): Bar => ({
    id: "x",
    service: "s",
    name: "n",
    kind: "internal",
    start: 0,
    duration: 1,
    depth: 0,
    error: false,
    ...over,
  });

  it("leaves out what the trace does not have yet", () => {
    expect(stages([bar({ id: "a", kind: "server", duration: 4 })])).toEqual({
      accepted: 4,
      inKafka: undefined,
      persisted: undefined,
      notified: undefined,
    });
  });

  it("counts the first successful write under a consumer as persisted, not a failed one", () => {
    const bars = [
      bar({ id: "p", kind: "producer", start: 1, duration: 2 }),
      bar({ id: "c", kind: "consumer", start: 5, duration: 20 }),
      bar({ id: "w1", parentId: "c", kind: "client", start: 6, duration: 3, error: true }),
      bar({ id: "w2", parentId: "c", kind: "client", start: 10, duration: 4 }),
      bar({ id: "r", parentId: "p", kind: "client", start: 1, duration: 1 }),
    ];
    const s = stages(bars);
    expect(s.persisted).toBe(14);
    expect(s.inKafka).toBe(4);
  });
});

describe("classify", () => {
  const url = "http://gw/traces/api/traces/abc";

  it("takes Jaeger's trace", () => {
    const result = classify(200, JSON.stringify(recorded), url);
    expect(result.ok).toBe(true);
  });

  it("tells Jaeger's own 'no such trace' from the gateway's refusal or absence", () => {
    const jaeger404 = JSON.stringify({ data: null, errors: [{ code: 404, msg: "trace not found" }] });
    expect(classify(404, jaeger404, url)).toEqual({ ok: false, failure: { kind: "not-found" } });
    const problem = JSON.stringify({ status: 503, detail: "Jaeger does not answer; traces cannot be looked up right now" });
    expect(classify(503, problem, url)).toEqual({
      ok: false,
      failure: { kind: "unavailable", detail: `${url} answered 503: Jaeger does not answer; traces cannot be looked up right now` },
    });
    expect(classify(502, "<html>Bad Gateway</html>", url)).toMatchObject({ ok: false, failure: { kind: "unavailable" } });
    expect(classify(404, "<html>not found</html>", url)).toMatchObject({ ok: false, failure: { kind: "unavailable" } });
  });

  it("refuses a 200 that is not a trace", () => {
    expect(classify(200, "{}", url)).toMatchObject({ ok: false, failure: { kind: "invalid" } });
    expect(classify(200, "not json", url)).toMatchObject({ ok: false, failure: { kind: "invalid" } });
  });
});
