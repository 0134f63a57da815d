// What every notification shows of its event's way through the platform, whoever sent
// the command: delivered (this browser received it) and persisted (from the trace: the end
// of the persister's Cassandra write), each counted from the command's acceptance; the
// page header's live p50/p99 of both over the last minute; and the ways into the trace
// view (a click on a notification, or the "Trace" button of a command's response).

import type { DocumentEvent } from "./stream";
import { fetchTrace, waterfall } from "./trace";
import { formatMs, since, SlidingWindow } from "./timing";
import type { TraceView } from "./traceview";

/** Spans reach Jaeger in batches (the exporters' default: every 5 s): look a little later. */
const FIRST_LOOKUP_MS = 6_000;
const RETRY_LOOKUP_MS = 3_000;
const LOOKUP_ATTEMPTS = 5;
/** Trace look-ups at once, and how many may wait: under a burst the newest are looked up
 * and the rest say so, rather than the page flooding Jaeger. */
const CONCURRENT_LOOKUPS = 2;
const QUEUED_LOOKUPS = 30;

interface Pending {
  item: HTMLElement;
  traceId: string;
  timestamp: string;
  attempts: number;
}

export class Pipeline {
  private readonly delivered = new SlidingWindow();
  private readonly persisted = new SlidingWindow();
  private readonly stats: HTMLElement;
  private readonly queue: Pending[] = [];
  private running = 0;
  /** Trace ids of notifications by `TYPE:documentId`, for the command response's button. */
  private readonly traces = new Map<string, { traceId: string; receivedAt: number }>();
  private readonly traceButton: HTMLButtonElement;
  private expected: string | undefined;

  constructor(
    private readonly base: string,
    private readonly view: TraceView,
    list: HTMLElement,
    header: HTMLElement,
    responseHeading: HTMLElement,
  ) {
    this.stats = document.createElement("p");
    this.stats.className = "pipeline-stats";
    this.stats.dataset.testid = "pipeline-stats";
    this.stats.setAttribute("aria-live", "off");
    header.append(this.stats);
    this.refreshStats();
    setInterval(() => this.refreshStats(), 1_000);

    // A click anywhere on a notification but a link to Jaeger's UI opens its trace; the
    // button inside does the same from the keyboard.
    list.addEventListener("click", (event) => {
      const target = event.target as HTMLElement;
      if (target.closest("a[href], button")) return;
      const item = target.closest<HTMLElement>("li[data-trace-id]");
      if (item) this.openItem(item);
    });

    this.traceButton = document.createElement("button");
    this.traceButton.type = "button";
    this.traceButton.className = "view-trace";
    this.traceButton.dataset.testid = "response-trace";
    this.traceButton.textContent = "Trace";
    this.traceButton.disabled = true;
    this.traceButton.title = "The trace of the last command, once its notification has arrived";
    this.traceButton.addEventListener("click", () => {
      const found = this.expected ? this.traces.get(this.expected) : undefined;
      if (found) void this.view.open({ ...found, label: this.expected!.replace(":", " ") });
    });
    responseHeading.append(this.traceButton);
  }

  /** A command was accepted: its response's "Trace" button follows its notification. */
  commandAccepted(key: string): void {
    this.expected = key;
    this.traceButton.disabled = !this.traces.has(key);
  }

  /** A new response is shown: until it is an accepted command's, it has no trace to show. */
  responseShown(): void {
    this.expected = undefined;
    this.traceButton.disabled = true;
  }

  /** Adds the timings to a notification's list item, just received. */
  notified(item: HTMLElement, event: DocumentEvent, receivedAt = Date.now()): void {
    const key = `${event.header.type}:${event.payload.id}`;
    this.traces.set(key, { traceId: event.header.traceId, receivedAt });
    if (this.traces.size > 1_000) this.traces.delete(this.traces.keys().next().value!);
    if (key === this.expected) this.traceButton.disabled = false;

    item.dataset.traceId = event.header.traceId;
    item.dataset.receivedAt = String(receivedAt);
    const delivered = since(event.header.timestamp, receivedAt);
    const timings = document.createElement("span");
    timings.className = "pipeline";
    timings.innerHTML =
      `<span class="persisted" data-testid="persisted">persisted …</span>` +
      ` · <span class="delivered" data-testid="delivered"></span>` +
      ` <button type="button" class="view-trace" aria-label="Show the trace">waterfall</button>`;
    const deliveredCell = timings.querySelector<HTMLElement>(".delivered")!;
    deliveredCell.dataset.ms = String(delivered);
    deliveredCell.textContent = `delivered here ${formatMs(delivered)} after acceptance`;
    timings.querySelector("button")!.addEventListener("click", () => this.openItem(item));
    item.append(timings);
    this.delivered.add(delivered, receivedAt);
    this.refreshStats();

    this.queue.push({ item, traceId: event.header.traceId, timestamp: event.header.timestamp, attempts: 0 });
    while (this.queue.length > QUEUED_LOOKUPS) {
      const dropped = this.queue.shift()!;
      this.setPersisted(dropped.item, "persisted: not looked up (too many at once; open the trace)");
    }
    setTimeout(() => this.pump(), FIRST_LOOKUP_MS);
  }

  private openItem(item: HTMLElement): void {
    void this.view.open({
      traceId: item.dataset.traceId!,
      receivedAt: Number(item.dataset.receivedAt),
      label: `${item.dataset.type ?? ""} ${item.dataset.document ?? ""}`.trim(),
    });
  }

  /** Looks up the oldest waiting traces, a few at a time. */
  private pump(): void {
    while (this.running < CONCURRENT_LOOKUPS && this.queue.length > 0) {
      const next = this.queue.shift()!;
      this.running += 1;
      void this.lookUp(next).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  private async lookUp(pending: Pending): Promise<void> {
    pending.attempts += 1;
    const result = await fetchTrace(this.base, pending.traceId);
    if (!result.ok && result.failure.kind === "unavailable") {
      this.setPersisted(pending.item, "persisted: unknown (Jaeger does not answer)");
      return;
    }
    const shown = result.ok ? waterfall(result.trace) : undefined;
    const at = shown?.stages.persisted;
    if (shown && at !== undefined) {
      const ms = since(pending.timestamp, shown.start + at);
      const cell = this.setPersisted(pending.item, `persisted ${formatMs(ms)} after acceptance`);
      if (cell) cell.dataset.ms = String(ms);
      this.persisted.add(ms, Date.now());
      this.refreshStats();
      return;
    }
    if (pending.attempts >= LOOKUP_ATTEMPTS) {
      this.setPersisted(pending.item, "persisted: not in the trace (yet)");
      return;
    }
    setTimeout(() => {
      this.queue.push(pending);
      this.pump();
    }, RETRY_LOOKUP_MS);
  }

  private setPersisted(item: HTMLElement, text: string): HTMLElement | null {
    const cell = item.querySelector<HTMLElement>(".persisted");
    if (cell) cell.textContent = text;
    return cell;
  }

  private refreshStats(): void {
    const now = Date.now();
    const d = this.delivered.summary(now);
    const p = this.persisted.summary(now);
    const part = (name: string, s: { count: number; p50: number; p99: number }) =>
      s.count === 0
        ? `${name}: none yet`
        : `${name} p50 ${formatMs(s.p50)} · p99 ${formatMs(s.p99)} (${s.count})`;
    this.stats.textContent = `Last minute, from acceptance: ${part("persisted", p)}; ${part("delivered here", d)}`;
    this.stats.dataset.delivered = String(d.count);
    this.stats.dataset.persisted = String(p.count);
  }
}
