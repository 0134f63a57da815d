// Pipeline timings of notifications: how long each event took from its command's
// acceptance (the event's own `header.timestamp`, set by the producer when it accepted the
// command) to being persisted (the end of the persister's Cassandra write, from the trace)
// and to being delivered to this browser (when the page received it), and the p50/p99 of
// those over a sliding window for the page's header.

/** The nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface Summary {
  count: number;
  p50: number;
  p99: number;
}

/** Values with the time they were taken; only those of the last `span` ms count. */
export class SlidingWindow {
  private samples: { at: number; value: number }[] = [];

  constructor(private readonly span = 60_000) {}

  add(value: number, at: number): void {
    if (!Number.isFinite(value)) return;
    this.samples.push({ at, value });
  }

  /** The count, p50 and p99 of the values taken within the window ending at `now`. */
  summary(now: number): Summary {
    this.samples = this.samples.filter((s) => s.at > now - this.span);
    const sorted = this.samples.map((s) => s.value).sort((a, b) => a - b);
    return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  }
}

/** Milliseconds from the event's acceptance to `epochMs`, never negative (clocks differ a little). */
export function since(timestamp: string, epochMs: number): number {
  const accepted = Date.parse(timestamp);
  if (Number.isNaN(accepted)) return Number.NaN;
  return Math.max(0, epochMs - accepted);
}

/** A duration for people: "850 ms", "1.2 s", "–" for none. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}
