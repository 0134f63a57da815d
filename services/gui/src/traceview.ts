// The trace view: a dialog that shows one trace as a waterfall, one lane per service in
// the order a command travels (producer, persister, notifier), then this browser's receipt
// of the notification; each span a bar with its kind and duration, above them the stages
// (accepted, in Kafka, persisted, notified). Spans reach Jaeger in batches from each
// process, so the view looks again until every stage is there; when Jaeger does not
// answer, it says so.

import { fetchTrace, waterfall, type Stages, type TraceFailure, type Waterfall } from "./trace";
import { formatMs } from "./timing";

/** How long the view keeps looking for spans that have not reached Jaeger yet. */
const PATIENCE_MS = 30_000;
const RETRY_MS = 1_500;

export interface Opened {
  traceId: string;
  /** Epoch ms at which this browser received the notification, when it was one. */
  receivedAt?: number;
  /** A label for the heading, e.g. "CREATE 1b4e…". */
  label?: string;
}

const STAGES: [key: keyof Stages, label: string, help: string][] = [
  ["accepted", "accepted", "the producer answered the command"],
  ["inKafka", "in Kafka", "from the producer's publish to the first consumer taking the record"],
  ["persisted", "persisted", "Cassandra acknowledged the persister's write"],
  ["notified", "notified", "the notifier handed the event to its streams"],
];

export class TraceView {
  private readonly dialog: HTMLDialogElement;
  private readonly heading: HTMLElement;
  private readonly status: HTMLElement;
  private readonly stagesList: HTMLElement;
  private readonly lanes: HTMLElement;
  /** Which opening the running look-ups belong to; a newer opening stops the older. */
  private generation = 0;

  constructor(
    private readonly base: string,
    /** Where the Jaeger UI is, for the "open in Jaeger" link; `null`: no such link. */
    private readonly jaegerUi: string | null,
  ) {
    this.dialog = document.createElement("dialog");
    this.dialog.id = "trace-view";
    this.dialog.dataset.testid = "trace-view";
    this.dialog.setAttribute("aria-labelledby", "trace-view-title");
    this.dialog.innerHTML =
      `<div class="trace-head"><h2 id="trace-view-title"></h2>` +
      `<button type="button" class="close" aria-label="Close the trace view">Close</button></div>` +
      `<p class="trace-status" data-testid="trace-status" role="status"></p>` +
      `<dl class="stages" data-testid="trace-stages"></dl>` +
      `<div class="lanes" data-testid="trace-lanes"></div>` +
      (jaegerUi === null
        ? ""
        : `<p class="trace-foot"><a class="jaeger-ui" target="_blank" rel="noopener">Open in the Jaeger UI</a></p>`);
    this.heading = this.dialog.querySelector("h2")!;
    this.status = this.dialog.querySelector(".trace-status")!;
    this.stagesList = this.dialog.querySelector(".stages")!;
    this.lanes = this.dialog.querySelector(".lanes")!;
    this.dialog.querySelector(".close")!.addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => (this.generation += 1));
    document.body.append(this.dialog);
  }

  /** Opens the view for a trace and keeps it current until the trace is complete. */
  async open(opened: Opened): Promise<void> {
    const generation = ++this.generation;
    this.heading.textContent = `Trace ${opened.label ? `of ${opened.label}` : opened.traceId}`;
    const jaegerLink = this.dialog.querySelector<HTMLAnchorElement>("a.jaeger-ui");
    if (jaegerLink) jaegerLink.href = `${this.jaegerUi}/trace/${opened.traceId}`;
    this.dialog.dataset.traceId = opened.traceId;
    this.stagesList.replaceChildren();
    this.lanes.replaceChildren();
    this.setStatus("loading", `Looking up trace ${opened.traceId} through the gateway…`);
    if (!this.dialog.open) this.dialog.showModal();

    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      const result = await fetchTrace(this.base, opened.traceId);
      if (generation !== this.generation) return;
      let shown: Waterfall | undefined;
      if (result.ok) {
        shown = waterfall(result.trace);
        if (shown) this.render(shown, opened.receivedAt);
      }
      const complete = shown !== undefined && STAGES.every(([key]) => shown!.stages[key] !== undefined);
      if (complete) {
        this.setStatus("complete", `${shown!.groups.reduce((n, g) => n + g.bars.length, 0)} spans, ${formatMs(shown!.total)} in all.`);
        return;
      }
      if (!result.ok && result.failure.kind !== "not-found") {
        this.fail(result.failure);
        return;
      }
      if (Date.now() > deadline) {
        this.setStatus(
          "incomplete",
          shown
            ? "Some spans never reached Jaeger; this is what it has."
            : `Jaeger has no trace ${opened.traceId}: it may be older than what Jaeger keeps, or its spans were lost.`,
        );
        return;
      }
      this.setStatus(
        "waiting",
        shown
          ? "Waiting for the rest of the spans (each service exports them in batches every few seconds)…"
          : "Waiting for the spans to reach Jaeger (each service exports them in batches every few seconds)…",
      );
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      if (generation !== this.generation) return;
    }
  }

  private fail(failure: TraceFailure): void {
    if (failure.kind === "unavailable") {
      this.setStatus(
        "unavailable",
        `Jaeger does not answer, so the trace cannot be shown (${failure.detail}). ` +
          "Locally, `cargo xtask status` shows whether it runs.",
      );
    } else if (failure.kind === "invalid") {
      this.setStatus("unavailable", `Jaeger's answer is not a trace (${failure.detail}).`);
    }
  }

  private setStatus(state: string, text: string): void {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  private render(w: Waterfall, receivedAt: number | undefined): void {
    // The scale spans the trace and, when later, this browser's receipt.
    const received = receivedAt === undefined ? undefined : Math.max(0, receivedAt - w.start);
    const scale = Math.max(w.total, received ?? 0, 1);
    const percent = (ms: number) => `${Math.min(100, (ms / scale) * 100).toFixed(2)}%`;

    this.stagesList.replaceChildren(
      ...STAGES.map(([key, label, help]) => {
        const item = document.createElement("div");
        item.dataset.stage = key;
        item.title = help;
        const term = document.createElement("dt");
        term.textContent = label;
        const value = document.createElement("dd");
        const ms = w.stages[key];
        value.textContent = ms === undefined ? "…" : key === "inKafka" ? formatMs(ms) : `+${formatMs(ms)}`;
        item.append(term, value);
        return item;
      }),
    );

    const lanes = w.groups.map((group) => {
      const lane = this.lane(group.service);
      for (const bar of group.bars) {
        const row = document.createElement("div");
        row.className = "bar-row";
        row.dataset.kind = bar.kind;
        row.dataset.name = bar.name;
        row.dataset.start = bar.start.toFixed(3);
        if (bar.error) row.dataset.error = "true";
        const label = document.createElement("span");
        label.className = "bar-label";
        // The nesting shows as indentation; CSSOM styles are allowed by the page's policy.
        label.style.setProperty("padding-left", `${bar.depth * 0.8}rem`);
        label.textContent = bar.name;
        const kind = document.createElement("span");
        kind.className = `bar-kind kind-${bar.kind}`;
        kind.textContent = bar.kind.toUpperCase();
        const track = document.createElement("span");
        track.className = "bar-track";
        const fill = document.createElement("span");
        fill.className = "bar";
        fill.style.setProperty("left", percent(bar.start));
        fill.style.setProperty("width", `max(2px, ${percent(bar.duration)})`);
        fill.title = `${bar.name}: starts +${formatMs(bar.start)}, takes ${formatMs(bar.duration)}`;
        track.append(fill);
        const took = document.createElement("span");
        took.className = "bar-took";
        took.textContent = formatMs(bar.duration);
        row.append(label, kind, track, took);
        lane.append(row);
      }
      return lane;
    });
    if (received !== undefined) {
      const lane = this.lane("browser", "this browser");
      const row = document.createElement("div");
      row.className = "bar-row";
      row.dataset.kind = "receipt";
      row.innerHTML =
        `<span class="bar-label">notification received</span><span class="bar-kind">SSE</span>` +
        `<span class="bar-track"><span class="bar marker"></span></span><span class="bar-took"></span>`;
      row.querySelector<HTMLElement>(".bar")!.style.setProperty("left", percent(received));
      row.querySelector(".bar-took")!.textContent = `+${formatMs(received)}`;
      lane.append(row);
      lanes.push(lane);
    }
    this.lanes.replaceChildren(...lanes);
  }

  private lane(service: string, title = service): HTMLElement {
    const lane = document.createElement("section");
    lane.className = "lane";
    lane.dataset.service = service;
    const heading = document.createElement("h3");
    heading.textContent = title;
    lane.append(heading);
    return lane;
  }
}
