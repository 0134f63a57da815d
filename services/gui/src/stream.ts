// The notification stream: Server-Sent Events read with fetch (not EventSource), so that
// the client decides when to reconnect and always sends the id of the last event it
// received. EventSource gives up for good when a restarting gateway answers non-200;
// this client keeps trying with backoff, and resumes exactly where it left off.

import { SseParser, type Frame } from "./sse";

export type Status = "connecting" | "open" | "reconnecting" | "paused";

/** A document event as the notifier sends it. */
export interface DocumentEvent {
  header: { type: "CREATE" | "UPDATE" | "DELETE"; id: string; timestamp: string; traceId: string };
  payload: { id: string; author: string | null; text: string | null };
}

export interface Handlers {
  onEvent(event: DocumentEvent, id: string | undefined): void;
  /** History the client asked for is gone; `data` says from where the stream goes on. */
  onReset(data: unknown): void;
  onStatus(status: Status, detail?: string): void;
  /** After a reconnect: how many events that happened while away were delivered. */
  onRecovered(count: number): void;
}

export interface Options {
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** First and largest reconnect delay, in ms. */
  initialDelay?: number;
  maxDelay?: number;
  random?: () => number;
}

/** The delay before reconnect attempt `attempt` (0-based): exponential, capped, with
 * up to 20 % jitter so that many clients do not come back at the same instant. */
export function backoff(attempt: number, initial: number, max: number, random: () => number): number {
  const base = Math.min(max, initial * 2 ** attempt);
  return Math.round(base * (1 - 0.2 * random()));
}

/** How many event ids the client remembers to drop repeats: far more than a page shows. */
export const REMEMBERED_EVENT_IDS = 10_000;

export class StreamClient {
  lastEventId: string | undefined;
  /** Ids of events already shown, oldest first: a repeated event id (a command retried
   * with its idempotency key) is one event, shown once. */
  private readonly shown = new Set<string>();
  private running = false;
  private abort: AbortController | undefined;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly random: () => number;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly handlers: Handlers,
    options: Options = {},
  ) {
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.initialDelay = options.initialDelay ?? 500;
    this.maxDelay = options.maxDelay ?? 10_000;
    this.random = options.random ?? Math.random;
  }

  /** Connects (or reconnects after `stop`) from the last event id. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Disconnects, keeping the last event id for the next `start`. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort?.abort();
    await this.loop;
    this.handlers.onStatus("paused");
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let first = true;
    while (this.running) {
      const reconnectedAt = first ? undefined : Date.now();
      this.handlers.onStatus(first ? "connecting" : "reconnecting");
      const received = await this.connectOnce(reconnectedAt);
      if (!this.running) return;
      first = false;
      // A connection that delivered something was healthy: start backing off afresh.
      attempt = received > 0 ? 0 : attempt + 1;
      await this.sleep(backoff(attempt, this.initialDelay, this.maxDelay, this.random));
    }
  }

  /** One connection, until it ends; returns how many frames it delivered. */
  private async connectOnce(reconnectedAt: number | undefined): Promise<number> {
    this.abort = new AbortController();
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.lastEventId) headers["last-event-id"] = this.lastEventId;
    let received = 0;
    let recovered = 0;
    try {
      const response = await this.fetch(this.url, { headers, signal: this.abort.signal, cache: "no-store" });
      if (!response.ok || !response.body) {
        this.handlers.onStatus("reconnecting", `the server answered ${response.status}`);
        return 0;
      }
      this.handlers.onStatus("open");
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of parser.push(value)) {
          received += 1;
          if (this.handle(frame, reconnectedAt)) recovered += 1;
        }
        if (reconnectedAt !== undefined && recovered > 0) {
          this.handlers.onRecovered(recovered);
        }
      }
      this.handlers.onStatus("reconnecting", "the stream ended");
    } catch (error) {
      if (this.running) this.handlers.onStatus("reconnecting", String(error));
    }
    return received;
  }

  /** Handles one frame; true when it was an event that happened before `since`. */
  private handle(frame: Frame, since: number | undefined): boolean {
    if (frame.id !== undefined) this.lastEventId = frame.id;
    if (frame.event === "reset") {
      this.handlers.onReset(frame.data === undefined ? undefined : safeJson(frame.data));
      return false;
    }
    if (frame.data === undefined || frame.event !== undefined) return false;
    const event = safeJson(frame.data) as DocumentEvent | undefined;
    if (!event?.header) return false;
    if (this.shown.has(event.header.id)) return false;
    this.shown.add(event.header.id);
    if (this.shown.size > REMEMBERED_EVENT_IDS) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.shown.values().next().value;
      if (oldest !== undefined) this.shown.delete(oldest);
    }
    this.handlers.onEvent(event, frame.id);
    return since !== undefined && Date.parse(event.header.timestamp) <= since;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
