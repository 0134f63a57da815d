// One trace as the GUI shows it: read from Jaeger's query API through the gateway's
// read-only `/traces/` route, and turned into a waterfall (spans grouped by service, in
// the order a command travels) with the stage timings a user asks about: when the command
// was accepted, how long its event sat in Kafka, when it was persisted and when notified.

/** A span as Jaeger's `/api/traces/{id}` returns it (times in microseconds). */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: { refType: string; spanID: string }[] | null;
  startTime: number;
  duration: number;
  tags?: { key: string; value: unknown }[] | null;
  processID: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

/** One bar of the waterfall; times in milliseconds from the trace's first span. */
export interface Bar {
  id: string;
  parentId?: string;
  service: string;
  name: string;
  /** OpenTelemetry span kind: server, client, producer, consumer or internal. */
  kind: string;
  start: number;
  duration: number;
  /** Nesting under its parent within the same service. */
  depth: number;
  error: boolean;
}

export interface ServiceGroup {
  service: string;
  bars: Bar[];
}

/** Milliseconds from the trace's start; absent when the trace lacks the span. */
export interface Stages {
  /** The producer answered the command (end of its SERVER span). */
  accepted?: number;
  /** From the producer handing the record to Kafka to the first consumer taking it (a
   * duration; Kafka's acknowledgement travels back to the producer meanwhile). */
  inKafka?: number;
  /** Cassandra acknowledged the write (end of the persister's first successful CLIENT span). */
  persisted?: number;
  /** The notifier handed the event to its streams (end of its `sse deliver` span). */
  notified?: number;
}

export interface Waterfall {
  traceId: string;
  /** Epoch milliseconds of the first span's start. */
  start: number;
  /** Milliseconds from the first span's start to the last span's end. */
  total: number;
  groups: ServiceGroup[];
  stages: Stages;
}

/**
 * The order in which a command's trace passes the services: the command side, then the
 * projection, then the push to browsers. Services not named here follow, by first start.
 */
export const PIPELINE = ["producer", "persister", "notifier"] as const;

/** The name of the notifier's span that hands an event to its SSE streams (ARCHITECTURE.md). */
export const DELIVER_SPAN = "sse deliver";

function tag(span: JaegerSpan, key: string): unknown {
  return span.tags?.find((t) => t.key === key)?.value;
}

function parentOf(span: JaegerSpan): string | undefined {
  return span.references?.find((r) => r.refType === "CHILD_OF")?.spanID;
}

/** Builds the waterfall of a trace; `undefined` when it has no spans. */
export function waterfall(trace: JaegerTrace): Waterfall | undefined {
  const spans = trace.spans ?? [];
  if (spans.length === 0) return undefined;
  const startUs = Math.min(...spans.map((s) => s.startTime));
  const endUs = Math.max(...spans.map((s) => s.startTime + s.duration));
  const service = (s: JaegerSpan) => trace.processes?.[s.processID]?.serviceName ?? s.processID;
  const byId = new Map(spans.map((s) => [s.spanID, s]));

  const depth = (s: JaegerSpan): number => {
    let d = 0;
    let parent = byId.get(parentOf(s) ?? "");
    // A parent in another service starts that service's nesting afresh.
    while (parent && service(parent) === service(s) && d < 32) {
      d += 1;
      parent = byId.get(parentOf(parent) ?? "");
    }
    return d;
  };

  const bars: Bar[] = spans.map((s) => ({
    id: s.spanID,
    parentId: parentOf(s),
    service: service(s),
    name: s.operationName,
    kind: String(tag(s, "span.kind") ?? "internal"),
    start: (s.startTime - startUs) / 1000,
    duration: s.duration / 1000,
    depth: depth(s),
    error: tag(s, "error") === true || tag(s, "otel.status_code") === "ERROR",
  }));

  const groups = new Map<string, Bar[]>();
  for (const bar of bars) {
    const list = groups.get(bar.service) ?? [];
    list.push(bar);
    groups.set(bar.service, list);
  }
  const rank = (name: string) => {
    const i = (PIPELINE as readonly string[]).indexOf(name);
    return i < 0 ? PIPELINE.length : i;
  };
  const ordered = [...groups.entries()]
    .map(([name, list]) => ({
      service: name,
      // Parents before their children at the same start, then by start.
      bars: list.sort((a, b) => a.start - b.start || a.depth - b.depth),
    }))
    .sort(
      (a, b) =>
        rank(a.service) - rank(b.service) || a.bars[0].start - b.bars[0].start || a.service.localeCompare(b.service),
    );

  return {
    traceId: trace.traceID,
    start: startUs / 1000,
    total: (endUs - startUs) / 1000,
    groups: ordered,
    stages: stages(bars),
  };
}

/** The stage timings of a command's trace, read from the kinds and names of its spans. */
export function stages(bars: Bar[]): Stages {
  const end = (b: Bar) => b.start + b.duration;
  const first = (list: Bar[], by: (b: Bar) => number) =>
    list.length === 0 ? undefined : list.reduce((a, b) => (by(b) < by(a) ? b : a));
  const last = (list: Bar[], by: (b: Bar) => number) =>
    list.length === 0 ? undefined : list.reduce((a, b) => (by(b) > by(a) ? b : a));

  const server = first(
    bars.filter((b) => b.kind === "server"),
    (b) => b.start,
  );
  const published = first(
    bars.filter((b) => b.kind === "producer"),
    (b) => b.start,
  );
  const consumed = first(
    bars.filter((b) => b.kind === "consumer"),
    (b) => b.start,
  );
  // The write of the projection: the first successful CLIENT span under a CONSUMER span
  // (the command side's own CLIENT spans, if any, are not under a consumer; a failed
  // attempt before a retry did not persist anything).
  const consumers = new Set(bars.filter((b) => b.kind === "consumer").map((b) => b.id));
  const write = first(
    bars.filter((b) => b.kind === "client" && !b.error && b.parentId !== undefined && consumers.has(b.parentId)),
    end,
  );
  const deliver = last(
    bars.filter((b) => b.name === DELIVER_SPAN),
    end,
  );
  return {
    accepted: server && end(server),
    inKafka: published && consumed ? Math.max(0, consumed.start - published.start) : undefined,
    persisted: write && end(write),
    notified: deliver && end(deliver),
  };
}

/** Why a trace cannot be shown. */
export type TraceFailure =
  | { kind: "unavailable"; detail: string }
  | { kind: "not-found" }
  | { kind: "invalid"; detail: string };

export type TraceResult = { ok: true; trace: JaegerTrace } | { ok: false; failure: TraceFailure };

/** The gateway path of one trace (the read-only route to Jaeger's query API). */
export function tracePath(traceId: string): string {
  return `traces/api/traces/${encodeURIComponent(traceId)}`;
}

/** Looks a trace up through the gateway at `base`. */
export async function fetchTrace(base: string, traceId: string, fetcher: typeof fetch = fetch): Promise<TraceResult> {
  const url = new URL(tracePath(traceId), base).href;
  let response: Response;
  try {
    response = await fetcher(url, { headers: { accept: "application/json" }, cache: "no-store" });
  } catch (error) {
    return { ok: false, failure: { kind: "unavailable", detail: `no answer from ${url}: ${String(error)}` } };
  }
  return classify(response.status, await response.text().catch(() => ""), url);
}

/** What an answer of the trace route means: a trace, none yet, or Jaeger not answering. */
export function classify(status: number, body: string, url: string): TraceResult {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  if (status === 200) {
    const trace = (json as { data?: JaegerTrace[] } | undefined)?.data?.[0];
    if (!trace || !Array.isArray(trace.spans)) {
      return { ok: false, failure: { kind: "invalid", detail: `${url} answered 200 without a trace` } };
    }
    if (trace.spans.length === 0) return { ok: false, failure: { kind: "not-found" } };
    return { ok: true, trace };
  }
  // Jaeger's own 404 carries its `errors` list; a 404 without it is the gateway's (no route).
  if (status === 404 && Array.isArray((json as { errors?: unknown } | undefined)?.errors)) {
    return { ok: false, failure: { kind: "not-found" } };
  }
  const detail = (json as { detail?: string } | undefined)?.detail;
  return {
    ok: false,
    failure: { kind: "unavailable", detail: `${url} answered ${status}${detail ? `: ${detail}` : ""}` },
  };
}
