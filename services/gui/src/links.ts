// Where the page's trace ids link to, checked: the page's own query string chooses it, so
// only an http(s) URL is accepted (a `javascript:` URL in a link would run on click).
//
// There is no default: the local Jaeger of `cargo xtask up` is built from its Go module,
// which has no web UI, so the page's own trace view is the local trace UI. A deployment
// whose Jaeger serves its UI (Kubernetes) names it with `?jaeger=URL`.

/**
 * The trace UI's base URL from `?jaeger=`: an absolute http(s) URL without its trailing
 * slash, else `null` (absent, empty, or anything that is not such a URL): no link then.
 */
export function traceUiBase(param: string | null): string | null {
  if (param === null || param === "") return null;
  let url: URL;
  try {
    url = new URL(param);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return url.href.replace(/\/+$/, "");
}
