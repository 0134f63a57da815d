// The platform's HTTP API as the GUI calls it, keeping what was sent and received so that
// the page can show both. URLs are relative to the page (served at <gateway>/gui/), so
// the GUI works behind any host.

export const MIME = {
  create: "application/vnd.kafka-cqrs.create-document.1+json",
  update: "application/vnd.kafka-cqrs.update-document.1+json",
} as const;

export interface Exchange {
  request: { method: string; url: string; headers: Record<string, string>; body?: string };
  response?: { status: number; statusText: string; headers: Record<string, string>; body: string };
  error?: string;
  /** Milliseconds from sending to the complete answer. */
  took: number;
}

/** The gateway's base URL, from the page's own location (…/gui/ → …/). */
export function gatewayBase(location: Location | URL): string {
  return new URL("../", location.href).href;
}

export async function call(
  base: string,
  method: string,
  path: string,
  body?: string,
  contentType?: string,
): Promise<Exchange> {
  const url = new URL(path, base).href;
  const headers: Record<string, string> = {};
  if (contentType) headers["content-type"] = contentType;
  const exchange: Exchange = { request: { method, url, headers, body }, took: 0 };
  const started = performance.now();
  try {
    const response = await fetch(url, { method, headers, body });
    const responseHeaders: Record<string, string> = {};
    response.headers.forEach((value, key) => (responseHeaders[key] = value));
    exchange.response = {
      status: response.status,
      statusText: response.statusText,
      headers: responseHeaders,
      body: await response.text(),
    };
  } catch (error) {
    exchange.error = String(error);
  }
  exchange.took = performance.now() - started;
  return exchange;
}

/** An exchange as text, the way `curl -i` would show it. */
export function describe(exchange: Exchange): { request: string; response: string } {
  const r = exchange.request;
  const request = [
    `${r.method} ${r.url}`,
    ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`),
    "",
    r.body ?? "",
  ].join("\n");
  const s = exchange.response;
  const response = s
    ? [
        `${s.status} ${s.statusText}  (${exchange.took.toFixed(0)} ms)`,
        ...Object.entries(s.headers).map(([k, v]) => `${k}: ${v}`),
        "",
        pretty(s.body),
      ].join("\n")
    : `no answer: ${exchange.error ?? "unknown error"}`;
  return { request, response };
}

function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}
