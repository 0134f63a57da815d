// Which `?jaeger=` values the page links trace ids to.
import { describe, expect, it } from "vitest";
import { traceUiBase } from "../src/links";

describe("traceUiBase", () => {
  it("takes an http or https URL, without its trailing slash", () => {
    expect(traceUiBase("https://jaeger.example.com/")).toBe("https://jaeger.example.com");
    expect(traceUiBase("http://10.0.0.5:16686/jaeger/")).toBe("http://10.0.0.5:16686/jaeger");
  });

  it("names no trace UI when absent or empty: the page's own trace view is the UI", () => {
    expect(traceUiBase(null)).toBeNull();
    expect(traceUiBase("")).toBeNull();
  });

  it("refuses every other scheme and anything that is not a URL", () => {
    for (const bad of [
      "javascript:alert(1)",
      "JavaScript:alert(document.cookie)",
      " javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox(1)",
      "//evil.example.com",
      "/relative/path",
      "not a url",
    ]) {
      expect(traceUiBase(bad), bad).toBeNull();
    }
  });
});
