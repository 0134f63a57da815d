// The percentile and sliding-window arithmetic behind the header's p50/p99.
import { describe, expect, it } from "vitest";
import { formatMs, percentile, since, SlidingWindow } from "../src/timing";

describe("percentile (nearest rank)", () => {
  it("picks the value at the rank, not an interpolation", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
  });

  it("is NaN without values", () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("SlidingWindow", () => {
  it("counts only the last minute", () => {
    const window = new SlidingWindow(60_000);
    window.add(1000, 0); // drops out at 60 s
    for (let i = 1; i <= 10; i += 1) window.add(i, 30_000 + i);
    expect(window.summary(59_999)).toEqual({ count: 11, p50: 6, p99: 1000 });
    expect(window.summary(60_000)).toEqual({ count: 10, p50: 5, p99: 10 });
    expect(window.summary(200_000).count).toBe(0);
  });

  it("ignores values that are not numbers", () => {
    const window = new SlidingWindow();
    window.add(Number.NaN, 1);
    window.add(Number.POSITIVE_INFINITY, 1);
    expect(window.summary(2).count).toBe(0);
  });
});

describe("since and formatMs", () => {
  it("counts from the event's RFC 3339 timestamp, never below zero", () => {
    const at = Date.parse("2026-11-28T10:00:00.000Z");
    expect(since("2026-11-28T10:00:00.000Z", at + 42)).toBe(42);
    expect(since("2026-11-28T10:00:00.100Z", at)).toBe(0);
    expect(since("yesterday-ish", at)).toBeNaN();
  });

  it("writes durations for people", () => {
    expect(formatMs(undefined)).toBe("–");
    expect(formatMs(3.25)).toBe("3.3 ms");
    expect(formatMs(850.4)).toBe("850 ms");
    expect(formatMs(1234)).toBe("1.23 s");
    expect(formatMs(12_345)).toBe("12.3 s");
  });
});
