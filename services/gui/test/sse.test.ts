import { describe, expect, it } from "vitest";
import { SseParser } from "../src/sse";

describe("SseParser", () => {
  it("parses ids, events, data and retry hints across chunk boundaries", () => {
    const parser = new SseParser();
    expect(parser.push("retry: 2000\nid: 0:0\n\nid: 0:1\nda")).toEqual([{ retry: 2000, id: "0:0" }]);
    expect(parser.push('ta: {"a":1}\n\n: keep-alive\n\n')).toEqual([{ id: "0:1", data: '{"a":1}' }]);
  });

  it("joins multi-line data and accepts CRLF line ends", () => {
    const parser = new SseParser();
    expect(parser.push("event: reset\r\ndata: one\r\ndata: two\r\n\r\n")).toEqual([
      { event: "reset", data: "one\ntwo" },
    ]);
  });

  it("ignores comments and unknown fields, and bad retry values", () => {
    const parser = new SseParser();
    expect(parser.push(": hello\nfoo: bar\nretry: soon\n\n")).toEqual([{}]);
    expect(parser.push(": only a comment\n\n")).toEqual([]);
  });
});
