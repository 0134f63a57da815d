// Where the page's trace ids link to, checked: the page's own query string chooses it, so
// only an http(s) URL is accepted (a `javascript:` URL in a link would run on click).

import { LOCAL_JAEGER_UI } from "./platform.generated";

/** The local Jaeger of `cargo xtask up`. */
export const LOCAL_TRACE_UI = LOCAL_JAEGER_UI;

/**
 * The trace UI's base URL from `?jaeger=`: an absolute http(s) URL without its trailing
 * slash, else `fallback` (also for anything that is not such a URL).
 */
export function traceUiBase(param: string | null, fallback = LOCAL_TRACE_UI): string {
  if (param === null || param === "") return fallback;
  let url: URL;
  try {
    url = new URL(param);
  } catch {
    return fallback;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return fallback;
  return url.href.replace(/\/+$/, "");
}
