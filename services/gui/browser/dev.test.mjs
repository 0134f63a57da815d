// `npm run dev` against the running system: Vite's dev server, started here with the
// project's vite.config.ts and API_GATEWAY set to the gateway under test, serves the page
// and proxies the API, the notifier's stream (each event as it comes) and the trace
// look-ups to the gateway.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "vite";

const gateway = (process.env.CQRS_GATEWAY ?? "http://127.0.0.1:8080").replace(/\/$/, "");
let server;
let dev;

before(async () => {
  process.env.API_GATEWAY = gateway;
  server = await createServer({ configFile: new URL("../vite.config.ts", import.meta.url).pathname, logLevel: "warn" });
  await server.listen();
  dev = server.resolvedUrls.local[0].replace(/\/$/, "");
});

after(async () => {
  await server?.close();
});

test("the dev server serves the page and proxies the API to API_GATEWAY", async () => {
  const page = await fetch(`${dev}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script type="module"/);
  for (const prefix of ["/producer", "/reader", "/notifier"]) {
    const health = await fetch(`${dev}${prefix}/healthz`);
    assert.equal(health.status, 200, `${prefix}/healthz through the dev server`);
    // The service's own answer, not the dev server's page for unknown paths.
    assert.equal((await health.text()).trim(), "ok", `${prefix}/healthz through the dev server`);
  }
  // The gateway's own answers come through as they are: the trace route's refusal.
  const refused = await fetch(`${dev}/traces/api/services`);
  assert.equal(refused.status, 404);
  assert.equal(refused.headers.get("content-type"), "application/problem+json");
});

test("the notifier's stream comes through the dev server event by event", async () => {
  const abort = new AbortController();
  const stream = await fetch(`${dev}/notifier/documents`, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  assert.equal(stream.status, 200);
  const reader = stream.body.pipeThrough(new TextDecoderStream()).getReader();
  const created = await fetch(`${dev}/producer/documents`, {
    method: "POST",
    headers: { "content-type": "application/vnd.kafka-cqrs.create-document.1+json" },
    body: JSON.stringify({ author: "Vite", text: "through the dev server" }),
  });
  assert.equal(created.status, 201);
  const { id } = await created.json();
  const sent = Date.now();
  let text = "";
  const deadline = setTimeout(() => abort.abort(), 15_000);
  try {
    while (!text.includes(id)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } catch (error) {
    assert.fail(`no event for ${id} within 15 s through the dev server (${error}); got: ${text}`);
  } finally {
    clearTimeout(deadline);
    abort.abort();
  }
  assert.ok(text.includes(id), `the stream ended without the event of ${id}`);
  // An unbuffered proxy passes the event on at once, not when a buffer fills.
  assert.ok(Date.now() - sent < 5_000, `the event took ${Date.now() - sent} ms`);
});
