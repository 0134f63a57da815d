// Wires the page: forms that call the API and show the exchange, the live notification
// list with trace links and command-to-event latency, and the data-flow picture.

import "./style.css";
import { call, describe, gatewayBase, MIME, type Exchange } from "./api";
import { diagram, light } from "./flow";
import { traceUiBase } from "./links";
import { Pipeline } from "./pipeline";
import { StreamClient, type DocumentEvent, type Status } from "./stream";
import { TraceView } from "./traceview";

const base = gatewayBase(window.location);
const params = new URLSearchParams(window.location.search);
/** Where trace ids link to: `?jaeger=URL` (http or https only); without it, only to the
 * page's own trace view (the local Jaeger has no UI). */
const jaeger = traceUiBase(params.get("jaeger"));

const $ = <T extends Element = HTMLElement>(selector: string) => document.querySelector(selector) as T;

$("#diagram").innerHTML = diagram();

/** The trace view and the pipeline timings of notifications (pipeline.ts). */
const pipeline = new Pipeline(
  base,
  new TraceView(base, jaeger),
  $("#events"),
  $("header"),
  $("#response").previousElementSibling as HTMLElement,
);

// --- commands and reads -----------------------------------------------------------

let shown = { request: "", response: "" };

/** The Document-Position of the last command's answer: the read form sends it (as the
 * `position` parameter, visible in the request shown), so a read shows at least that write. */
let lastPosition: string | undefined;

function show(exchange: Exchange): void {
  lastPosition = exchange.response?.headers["document-position"] ?? lastPosition;
  pipeline.responseShown();
  shown = describe(exchange);
  $("#request").textContent = shown.request;
  $("#response").textContent = shown.response;
}

for (const button of document.querySelectorAll<HTMLButtonElement>("button.copy")) {
  button.addEventListener("click", async () => {
    const which = button.dataset.copy as "request" | "response";
    try {
      await navigator.clipboard.writeText(shown[which]);
      button.textContent = "Copied";
    } catch {
      // Clipboard access needs https or localhost: select the text for a manual copy.
      const range = document.createRange();
      range.selectNodeContents($(`#${which}`));
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
      button.textContent = "select";
    }
    setTimeout(() => (button.textContent = "Copy"), 1200);
  });
}

/** When each command was sent, by `TYPE:documentId`, to time its event's arrival. */
const sent = new Map<string, number>();
/** Events that arrived before their command's answer (the create's id comes with it). */
const arrived = new Map<string, number>();

function fields(form: HTMLFormElement): Record<string, string> {
  const values: Record<string, string> = {};
  new FormData(form).forEach((value, key) => {
    if (typeof value === "string" && value.trim() !== "") values[key] = value.trim();
  });
  return values;
}

function fillIds(id: string): void {
  for (const input of document.querySelectorAll<HTMLInputElement>("input.doc-id")) input.value = id;
}

function onSubmit(id: string, handler: (form: HTMLFormElement) => Promise<void>): void {
  const form = $<HTMLFormElement>(id);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void handler(form);
  });
}

onSubmit("#create-form", async (form) => {
  const started = performance.now();
  const exchange = await call(base, "POST", "producer/documents", JSON.stringify(fields(form)), MIME.create);
  show(exchange);
  if (exchange.response?.status === 201) {
    light(document, "command");
    const id = (JSON.parse(exchange.response.body) as { id: string }).id;
    fillIds(id);
    track(`CREATE:${id}`, started);
  }
});

onSubmit("#read-form", async (form) => {
  const { id = "" } = fields(form);
  const at = lastPosition ? `?position=${encodeURIComponent(lastPosition)}` : "";
  const exchange = await call(base, "GET", `reader/documents/${encodeURIComponent(id)}${at}`);
  show(exchange);
  if (exchange.response) light(document, "read");
});

onSubmit("#update-form", async (form) => {
  const started = performance.now();
  const body = fields(form);
  const exchange = await call(base, "PUT", "producer/documents", JSON.stringify(body), MIME.update);
  show(exchange);
  if (exchange.response?.status === 200) {
    light(document, "command");
    track(`UPDATE:${body.id}`, started);
  }
});

onSubmit("#delete-form", async (form) => {
  const started = performance.now();
  const { id = "" } = fields(form);
  const exchange = await call(base, "DELETE", `producer/documents/${encodeURIComponent(id)}`);
  show(exchange);
  if (exchange.response?.status === 204) {
    light(document, "command");
    track(`DELETE:${id}`, started);
  }
});

/** Starts timing `key`, or finishes it if its event came first. */
function track(key: string, started: number): void {
  pipeline.commandAccepted(key);
  const at = arrived.get(key);
  if (at !== undefined) {
    arrived.delete(key);
    setLatency(key, at - started);
  } else {
    sent.set(key, started);
  }
}

function setLatency(key: string, ms: number): void {
  const cell = document.querySelector(`[data-key="${CSS.escape(key)}"] .latency`);
  if (cell) cell.textContent = `${Math.max(0, ms).toFixed(0)} ms after sending`;
}

// --- notifications ----------------------------------------------------------------

const list = $<HTMLOListElement>("#events");
const statusBadge = $("#status");
const recoveredNote = $("#recovered");
const resetWarning = $("#reset");
/** Missed events recovered by earlier connections, and by the current one. */
let recoveredBefore = 0;
let recoveredNow = 0;

function showRecovered(): void {
  const total = recoveredBefore + recoveredNow;
  recoveredNote.dataset.count = String(total);
  recoveredNote.textContent = `Recovered ${total} event(s) missed while disconnected.`;
  recoveredNote.hidden = total === 0;
}

function addEvent(event: DocumentEvent): void {
  const key = `${event.header.type}:${event.payload.id}`;
  const item = document.createElement("li");
  item.dataset.key = key;
  item.dataset.type = event.header.type;
  item.dataset.document = event.payload.id;
  item.dataset.eventId = event.header.id;
  const trace = event.header.traceId;
  item.innerHTML =
    `<span class="type type-${event.header.type.toLowerCase()}"></span>` +
    `<code class="doc"></code><time></time>` +
    `<a class="trace" target="_blank" rel="noopener"></a><span class="latency"></span>` +
    `<span class="fields"></span>`;
  item.querySelector(".type")!.textContent = event.header.type;
  item.querySelector(".doc")!.textContent = event.payload.id;
  const time = item.querySelector("time")!;
  time.dateTime = event.header.timestamp;
  time.textContent = new Date(event.header.timestamp).toLocaleTimeString();
  const link = item.querySelector<HTMLAnchorElement>("a.trace")!;
  if (jaeger !== null) {
    link.href = `${jaeger}/trace/${trace}`;
  } else {
    // No Jaeger UI to open: a click on the trace id, as anywhere on the notification, opens
    // the page's own trace view (pipeline.ts); its button does the same from the keyboard.
    link.title = "Open this trace";
  }
  link.textContent = `trace ${trace}`;
  link.dataset.traceId = trace;
  const changes = [
    event.payload.author !== null ? `author: ${event.payload.author}` : "",
    event.payload.text !== null ? `text: ${event.payload.text}` : "",
  ].filter(Boolean);
  item.querySelector(".fields")!.textContent = changes.join(", ");
  list.prepend(item);
  pipeline.notified(item, event);
  light(document, "command");

  const started = sent.get(key);
  if (started !== undefined) {
    sent.delete(key);
    setLatency(key, performance.now() - started);
  } else {
    arrived.set(key, performance.now());
  }
}

function setStatus(status: Status, detail?: string): void {
  statusBadge.textContent = detail ? `${status} (${detail})` : status;
  statusBadge.dataset.status = status;
  if (status === "open") {
    // A new connection counts its recovered events from zero.
    recoveredBefore += recoveredNow;
    recoveredNow = 0;
  }
}

const stream = new StreamClient(new URL("notifier/documents", base).href, {
  onEvent: addEvent,
  onReset(data) {
    const message =
      (data as { message?: string } | undefined)?.message ?? "history was lost; the stream continues";
    resetWarning.textContent = `Warning: ${message}`;
    resetWarning.hidden = false;
  },
  onStatus: setStatus,
  onRecovered(count) {
    recoveredNow = count;
    showRecovered();
  },
});

const pause = $<HTMLButtonElement>("#pause");
const resume = $<HTMLButtonElement>("#resume");
pause.addEventListener("click", async () => {
  pause.disabled = true;
  await stream.stop();
  resume.disabled = false;
  resume.focus();
});
resume.addEventListener("click", () => {
  resume.disabled = true;
  stream.start();
  pause.disabled = false;
  pause.focus();
});
$("#clear").addEventListener("click", () => {
  list.replaceChildren();
  resetWarning.hidden = true;
  recoveredBefore = 0;
  recoveredNow = 0;
  showRecovered();
});

stream.start();
