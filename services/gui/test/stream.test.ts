// The stream client's decisions, with plain values standing in for the network: what it
// sends when it reconnects, how long it waits, and what it reports.
import { describe, expect, it } from "vitest";
import { backoff, StreamClient, type DocumentEvent, type Status } from "../src/stream";

const encoder = new TextEncoder();

function event(type: DocumentEvent["header"]["type"], timestamp: string, id = crypto.randomUUID()): string {
  const header = { type, id, timestamp, traceId: "a".repeat(32) };
  return JSON.stringify({ header, payload: { id: "d1", author: null, text: null } });
}

/** A response whose body is `chunks`, then the end of the stream. */
function sse(chunks: string[], status = 200): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(status === 200 ? body : "gateway restarting", { status });
}

interface Recorded {
  requests: (string | undefined)[];
  events: string[];
  statuses: string[];
  resets: unknown[];
  recovered: number[];
  sleeps: number[];
}

/** A client that gets `responses` in turn, and stops after the last one. */
function client(responses: Response[]): { client: StreamClient; recorded: Recorded; done: Promise<void> } {
  const recorded: Recorded = { requests: [], events: [], statuses: [], resets: [], recovered: [], sleeps: [] };
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let stream: StreamClient;
  const fetch = (async (_url: string, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    recorded.requests.push(headers["last-event-id"]);
    const next = responses.shift();
    if (!next) {
      // Out of responses: stop the client, which aborts this request.
      return new Promise<Response>((_, reject) => {
        const signal = init?.signal;
        const fail = () => reject(new DOMException("aborted", "AbortError"));
        if (signal?.aborted) fail();
        else signal?.addEventListener("abort", fail);
        void stream.stop().then(finish);
      });
    }
    return next;
  }) as typeof globalThis.fetch;
  stream = new StreamClient("http://gateway/notifier/documents", {
    onEvent: (e, id) => recorded.events.push(`${e.header.type}@${id}`),
    onReset: (data) => recorded.resets.push(data),
    onStatus: (s: Status) => recorded.statuses.push(s),
    onRecovered: (n) => recorded.recovered.push(n),
  }, {
    fetch,
    sleep: async (ms) => {
      recorded.sleeps.push(ms);
    },
    random: () => 0,
    initialDelay: 100,
    maxDelay: 1000,
  });
  return { client: stream, recorded, done };
}

describe("backoff", () => {
  it("doubles up to the cap, with at most 20 % jitter below it", () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoff(a, 100, 1000, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoff(0, 100, 1000, () => 1)).toBe(80);
  });
});

describe("StreamClient", () => {
  it("reconnects with the id of the last event it received", async () => {
    const { client: stream, recorded, done } = client([
      sse(["retry: 2000\nid: 0:0\n\n", `id: 0:1\ndata: ${event("CREATE", "2020-01-01T00:00:00.000Z")}\n\n`]),
      sse([`id: 0:2\ndata: ${event("UPDATE", "2020-01-01T00:00:01.000Z")}\n\n`]),
    ]);
    stream.start();
    await done;
    expect(recorded.requests).toEqual([undefined, "0:1", "0:2"]);
    expect(recorded.events).toEqual(["CREATE@0:1", "UPDATE@0:2"]);
    expect(stream.lastEventId).toBe("0:2");
  });

  it("keeps trying with growing delays when the gateway answers non-200", async () => {
    const { client: stream, recorded, done } = client([sse([], 502), sse([], 503), sse([], 502)]);
    stream.start();
    await done;
    expect(recorded.sleeps).toEqual([200, 400, 800]);
    expect(recorded.statuses).toContain("reconnecting");
  });

  it("starts backing off afresh after a connection that delivered events", async () => {
    const { client: stream, recorded, done } = client([
      sse([], 502),
      sse([`id: 0:1\ndata: ${event("CREATE", "2020-01-01T00:00:00.000Z")}\n\n`]),
      sse([], 502),
    ]);
    stream.start();
    await done;
    expect(recorded.sleeps).toEqual([200, 100, 200]);
  });

  it("reports a reset and moves its position to the reset's id", async () => {
    const reset = JSON.stringify({ message: "history lost: gone", continuesFromOffset: 3 });
    const { client: stream, recorded, done } = client([sse([`event: reset\nid: 0:3\ndata: ${reset}\n\n`])]);
    stream.start();
    await done;
    expect(recorded.resets).toEqual([{ message: "history lost: gone", continuesFromOffset: 3 }]);
    expect(recorded.events).toEqual([]);
    expect(recorded.requests).toEqual([undefined, "0:3"]);
  });

  it("counts the events recovered after a reconnect: those that happened while away", async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 60_000).toISOString();
    const { client: stream, recorded, done } = client([
      sse(["id: 0:0\n\n"]),
      sse([
        `id: 0:1\ndata: ${event("CREATE", past)}\n\n`,
        `id: 0:2\ndata: ${event("UPDATE", past)}\n\n`,
        `id: 0:3\ndata: ${event("DELETE", future)}\n\n`,
      ]),
    ]);
    stream.start();
    await done;
    expect(recorded.recovered.at(-1)).toBe(2);
  });

  it("shows a repeated event id once, and still moves its position past it", async () => {
    const id = crypto.randomUUID();
    const { client: stream, recorded, done } = client([
      sse([
        `id: 0:1\ndata: ${event("CREATE", "2020-01-01T00:00:00.000Z", id)}\n\n`,
        `id: 0:2\ndata: ${event("CREATE", "2020-01-01T00:00:01.000Z", id)}\n\n`,
      ]),
      // Also across a reconnect.
      sse([
        `id: 0:3\ndata: ${event("CREATE", "2020-01-01T00:00:02.000Z", id)}\n\n`,
        `id: 0:4\ndata: ${event("UPDATE", "2020-01-01T00:00:03.000Z")}\n\n`,
      ]),
    ]);
    stream.start();
    await done;
    expect(recorded.events).toEqual(["CREATE@0:1", "UPDATE@0:4"]);
    expect(recorded.requests).toEqual([undefined, "0:2", "0:4"]);
  });
});
