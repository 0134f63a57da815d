// The GUI in a real headless Chromium against the running system (`cargo xtask up`):
// create, read, update and delete through the forms, each notification with its trace id,
// and a notifier restart in the middle that the stream recovers from without missing an
// event; a created document's trace as a waterfall, and what the view says when Jaeger
// does not answer. Screenshots go to CQRS_SCREENSHOTS (target/gui-screenshots).

import { execSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const gateway = (process.env.CQRS_GATEWAY ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const screenshots = process.env.CQRS_SCREENSHOTS ?? "../../target/gui-screenshots";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 30_000;

let browser;
let page;
let pageHeaders;
const problems = [];

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  browser = await chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("console", (message) => {
    // The stream's own reconnects during the notifier restart are expected 502s.
    if (message.type() === "error" && !/502|503|Bad Gateway|Failed to load resource/.test(message.text())) {
      problems.push(`console: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  // Anything the page's Content-Security-Policy blocks is a problem too.
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) =>
      window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI}`),
    );
  });
  const opened = await page.goto(`${gateway}/gui/`);
  pageHeaders = opened.headers();
  await page.getByTestId("status").filter({ hasText: /^open/ }).waitFor({ timeout: WAIT });
});

after(async () => {
  await browser?.close();
});

const item = (type, id) => page.locator(`#events li[data-type="${type}"][data-document="${id}"]`);
const response = () => page.getByTestId("response");

async function submit(form) {
  await page.locator(`${form} button[type=submit]`).click();
}

/** Reads through the form and waits for the whole answer, so that no read still in flight
 * can overwrite the response box after the next command's answer. */
async function read() {
  const answered = page.waitForResponse((r) => r.url().includes("/reader/documents/"));
  await submit("#read-form");
  await (await answered).finished();
}

test("create, read, update and delete through the forms, each notified with its trace", async () => {
  await page.fill("#create-form input[name=author]", "Browser");
  await page.fill("#create-form input[name=text]", "Hello from Chromium");
  await submit("#create-form");
  await response().filter({ hasText: /^201/ }).waitFor({ timeout: WAIT });
  const id = await page.inputValue("#read-form input[name=id]");
  assert.match(id, /^[0-9a-f-]{36}$/);

  // The command's flow lit up in the picture: producer, Kafka, persister, Cassandra,
  // notifier.
  const lit = await page.locator("#diagram .arrow.active").evaluateAll((arrows) => arrows.map((a) => a.id));
  for (const arrow of ["producer-kafka", "kafka-persister", "persister-cassandra", "kafka-notifier"]) {
    assert.ok(lit.includes(`arrow-${arrow}`), `arrow ${arrow} did not light up: ${lit}`);
  }

  const created = item("CREATE", id);
  await created.waitFor({ timeout: WAIT });
  const trace = await created.locator("a.trace").getAttribute("data-trace-id");
  assert.match(trace, /^[0-9a-f]{32}$/);
  // No `?jaeger=` and no Jaeger UI locally: the trace id links nowhere but the page's own view.
  assert.equal(await created.locator("a.trace").getAttribute("href"), null);
  await created.locator(".latency").filter({ hasText: /ms after sending/ }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: `${screenshots}/1-created.png`, fullPage: true });

  // Read: the persister may still be applying it.
  await expectEventually(async () => {
    await read();
    const text = await response().textContent();
    return text.startsWith("200") && text.includes("Hello from Chromium");
  }, "the created document to be readable");
  // The read sent the position of the create, so it could not miss it.
  assert.match(await page.locator("#request").textContent(), /\?position=\d+%3A\d+/);

  await page.fill("#update-form input[name=author]", "Updated");
  await submit("#update-form");
  await response().filter({ hasText: /^200/ }).waitFor({ timeout: WAIT });
  await item("UPDATE", id).waitFor({ timeout: WAIT });
  await expectEventually(async () => {
    await read();
    const text = await response().textContent();
    return text.includes('"author": "Updated"') && text.includes("Hello from Chromium");
  }, "the update to be readable with the text kept");

  await submit("#delete-form");
  await response().filter({ hasText: /^204/ }).waitFor({ timeout: WAIT });
  await item("DELETE", id).waitFor({ timeout: WAIT });
  await expectEventually(async () => {
    await read();
    return (await response().textContent()).startsWith("404");
  }, "the document to be gone");
  await page.screenshot({ path: `${screenshots}/2-crud-done.png`, fullPage: true });
});

test("a created document's trace opens as a waterfall: producer, persister, notifier, this browser", async () => {
  await page.fill("#create-form input[name=author]", "Tracer");
  await page.fill("#create-form input[name=text]", "Follow me through the system");
  await submit("#create-form");
  await response().filter({ hasText: /^201/ }).waitFor({ timeout: WAIT });
  const id = await page.inputValue("#read-form input[name=id]");
  const created = item("CREATE", id);
  await created.waitFor({ timeout: WAIT });
  const trace = await created.getAttribute("data-trace-id");
  assert.match(trace, /^[0-9a-f]{32}$/);
  // Delivered to this browser: counted from the event's acceptance at once.
  const delivered = Number(await created.getByTestId("delivered").getAttribute("data-ms"));
  assert.ok(delivered >= 0 && delivered < WAIT, `delivered after ${delivered} ms`);

  // A click on the notification opens its trace, through the gateway's /traces/ route.
  await created.locator(".doc").click();
  const view = page.getByTestId("trace-view");
  await view.waitFor({ state: "visible", timeout: WAIT });
  assert.equal(await view.getAttribute("data-trace-id"), trace);
  assert.equal(await view.locator("a.jaeger-ui").count(), 0, "a link to a Jaeger UI that is not configured");
  await view.locator('[data-testid=trace-status][data-state="complete"]').waitFor({ timeout: 45_000 });

  // One lane per service, in the order the command travelled, then this browser.
  const lanes = await view.locator(".lane").evaluateAll((all) => all.map((l) => l.dataset.service));
  assert.deepEqual(lanes, ["producer", "persister", "notifier", "browser"]);
  const rows = await view.locator(".lane").evaluateAll((all) =>
    all.map((lane) => ({
      service: lane.dataset.service,
      bars: [...lane.querySelectorAll(".bar-row")].map((r) => ({
        kind: r.dataset.kind,
        name: r.dataset.name,
        start: Number(r.dataset.start),
        took: r.querySelector(".bar-took").textContent,
      })),
    })),
  );
  const kinds = Object.fromEntries(rows.map((lane) => [lane.service, lane.bars.map((b) => b.kind)]));
  // Each lane's spans by start: the request before its publish, each consumer's span before
  // its Cassandra write or its delivery to the streams.
  const ordered = (service, expected) =>
    assert.deepEqual(kinds[service].filter((k) => expected.includes(k)), expected, JSON.stringify(rows));
  ordered("producer", ["server", "producer"]);
  ordered("persister", ["consumer", "client"]);
  ordered("notifier", ["consumer", "internal"]);
  for (const lane of rows.slice(0, 3)) {
    for (const bar of lane.bars) assert.match(bar.took, /\d( ms| s)$/, `${lane.service} ${bar.name}`);
  }
  // The producer's request starts the trace; each consumer starts after the publish began.
  const start = (service, kind) => rows.find((l) => l.service === service).bars.find((b) => b.kind === kind).start;
  assert.equal(start("producer", "server"), 0);
  assert.ok(start("persister", "consumer") >= start("producer", "producer"));
  assert.ok(start("notifier", "consumer") >= start("producer", "producer"));

  // The stages a user asks about, all known.
  const stages = await view.locator(".stages > div").evaluateAll((all) =>
    Object.fromEntries(all.map((s) => [s.dataset.stage, s.querySelector("dd").textContent])),
  );
  assert.deepEqual(Object.keys(stages), ["accepted", "inKafka", "persisted", "notified"]);
  for (const [stage, value] of Object.entries(stages)) assert.match(value, /\d( ms| s)$/, `${stage}: ${value}`);
  await view.screenshot({ path: `${screenshots}/6-trace-view.png` });
  await view.getByRole("button", { name: /close/i }).click();
  await view.waitFor({ state: "hidden", timeout: WAIT });

  // The command's response leads to the same trace.
  await page.getByTestId("response-trace").click();
  assert.equal(await page.getByTestId("response-trace").textContent(), "Trace");
  await view.waitFor({ state: "visible", timeout: WAIT });
  assert.equal(await view.getAttribute("data-trace-id"), trace);
  await view.getByRole("button", { name: /close/i }).click();

  // The notification shows when it was persisted, and the header the last minute's p50/p99.
  await created.getByTestId("persisted").filter({ hasText: /persisted \d.* after acceptance/ }).waitFor({ timeout: 45_000 });
  const stats = page.getByTestId("pipeline-stats");
  assert.ok(Number(await stats.getAttribute("data-persisted")) >= 1);
  assert.ok(Number(await stats.getAttribute("data-delivered")) >= 1);
  assert.match(await stats.textContent(), /persisted p50 \d.* · p99 \d.*delivered here p50 \d.* · p99 \d/);
});

test("with `?jaeger=URL`, trace ids and the trace view link to that Jaeger UI", async () => {
  const ui = "http://jaeger.example.test:16686";
  const other = await browser.newPage();
  try {
    await other.goto(`${gateway}/gui/?jaeger=${encodeURIComponent(`${ui}/`)}`);
    await other.getByTestId("status").filter({ hasText: /^open/ }).waitFor({ timeout: WAIT });
    await other.fill("#create-form input[name=author]", "Linker");
    await other.fill("#create-form input[name=text]", "Link me to Jaeger");
    await other.locator("#create-form button[type=submit]").click();
    await other.getByTestId("response").filter({ hasText: /^201/ }).waitFor({ timeout: WAIT });
    const id = await other.inputValue("#read-form input[name=id]");
    const created = other.locator(`#events li[data-type="CREATE"][data-document="${id}"]`);
    await created.waitFor({ timeout: WAIT });
    const trace = await created.getAttribute("data-trace-id");
    assert.equal(await created.locator("a.trace").getAttribute("href"), `${ui}/trace/${trace}`);
    await created.locator(".doc").click();
    const view = other.getByTestId("trace-view");
    await view.waitFor({ state: "visible", timeout: WAIT });
    assert.equal(await view.locator("a.jaeger-ui").getAttribute("href"), `${ui}/trace/${trace}`);
  } finally {
    await other.close();
  }
});

test("when Jaeger does not answer, the trace view says so plainly", async () => {
  const any = page.locator("#events li[data-trace-id]").first();
  execSync(process.env.CQRS_JAEGER_STOP, { stdio: "inherit" });
  try {
    await any.locator(".doc").click();
    const status = page.getByTestId("trace-view").getByTestId("trace-status");
    await status.filter({ hasText: /Jaeger does not answer/ }).waitFor({ timeout: WAIT });
    assert.equal(await status.getAttribute("data-state"), "unavailable");
    await page.screenshot({ path: `${screenshots}/7-jaeger-down.png`, fullPage: true });
    await page.getByTestId("trace-view").getByRole("button", { name: /close/i }).click();
  } finally {
    execSync(process.env.CQRS_JAEGER_START, { stdio: "inherit" });
  }
});

test("a notifier restart loses no event: the stream resumes with its last id", async () => {
  const before = await page.locator("#events li").count();
  execSync(process.env.CQRS_NOTIFIER_STOP, { stdio: "inherit" });
  await page.getByTestId("status").filter({ hasText: /^reconnecting/ }).waitFor({ timeout: WAIT });

  // Commands while the notifier is down: their events must still reach the page.
  const ids = [];
  for (const text of ["while down 1", "while down 2"]) {
    const answer = await fetch(`${gateway}/producer/documents`, {
      method: "POST",
      headers: { "content-type": "application/vnd.kafka-cqrs.create-document.1+json" },
      body: JSON.stringify({ author: "Offline", text }),
    });
    assert.equal(answer.status, 201);
    ids.push((await answer.json()).id);
  }
  await page.screenshot({ path: `${screenshots}/3-notifier-down.png`, fullPage: true });

  execSync(process.env.CQRS_NOTIFIER_START, { stdio: "inherit" });
  for (const id of ids) await item("CREATE", id).waitFor({ timeout: WAIT });
  await page.getByTestId("status").filter({ hasText: /^open/ }).waitFor({ timeout: WAIT });
  const recovered = Number(await page.getByTestId("recovered").getAttribute("data-count"));
  assert.ok(recovered >= 2, `recovered ${recovered} events`);
  // Nothing twice: every event appears once.
  const eventIds = await page.locator("#events li").evaluateAll((items) => items.map((i) => i.dataset.eventId));
  assert.equal(new Set(eventIds).size, eventIds.length, "an event was shown twice");
  assert.ok(eventIds.length >= before + 2);
  await page.screenshot({ path: `${screenshots}/4-recovered.png`, fullPage: true });
});

test("pause holds the stream, resume delivers what came meanwhile, clear empties the list", async () => {
  await page.click("#pause");
  await page.getByTestId("status").filter({ hasText: /^paused/ }).waitFor({ timeout: WAIT });
  const answer = await fetch(`${gateway}/producer/documents`, {
    method: "POST",
    headers: { "content-type": "application/vnd.kafka-cqrs.create-document.1+json" },
    body: JSON.stringify({ text: "while paused" }),
  });
  const { id } = await answer.json();
  await page.click("#resume");
  await item("CREATE", id).waitFor({ timeout: WAIT });
  await page.click("#clear");
  assert.equal(await page.locator("#events li").count(), 0);
});

test("usable at phone width and by keyboard, with no console errors", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${screenshots}/5-phone.png`, fullPage: true });
  // Keyboard: fill and submit the create form without a mouse.
  await page.focus("#create-form input[name=author]");
  await page.keyboard.type("Keys");
  await page.keyboard.press("Tab");
  await page.keyboard.type("typed");
  await page.keyboard.press("Enter");
  await response().filter({ hasText: /^201/ }).waitFor({ timeout: WAIT });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `the page scrolls sideways at phone width (${width}px)`);
  assert.deepEqual(problems, []);
});

test("served with a strict content security policy that nothing on the page breaks", async () => {
  const policy = pageHeaders["content-security-policy"] ?? "";
  assert.match(policy, /default-src 'self'/);
  assert.match(policy, /frame-ancestors 'none'/);
  assert.equal(pageHeaders["x-content-type-options"], "nosniff");
  assert.ok(pageHeaders["referrer-policy"], "a Referrer-Policy");
  // Every earlier test ran under the policy: nothing it did was blocked.
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
});

async function expectEventually(check, what) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
