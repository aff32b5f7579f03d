import { describe, expect, it } from "vitest";
import { duration, latencyBuckets, median, stack, total } from "./charts";

const counts = { label: "x", auto_run: 2, confirmed: 1, rejected: 0, forbidden: 1, waiting: 0 };

describe("charts", () => {
  it("stacks non-empty series left to right, scaled to the largest bar", () => {
    const s = stack(counts, 8, 400);
    expect(s.map((g) => [g.key, g.x, g.width])).toEqual([
      ["auto_run", 0, 100],
      ["confirmed", 100, 50],
      ["forbidden", 150, 50],
    ]);
    expect(total(counts)).toBe(4);
    expect(stack(counts, 0, 400)).toEqual([]);
  });
  it("median of an odd and even count, and of nothing", () => {
    expect(median([30, 5, 10])).toBe(10);
    expect(median([1, 2, 3, 10])).toBe(3);
    expect(median([])).toBeNull();
  });
  it("formats durations and buckets latencies", () => {
    expect(duration(42)).toBe("42 s");
    expect(duration(180)).toBe("3 min");
    expect(duration(7500)).toBe("2 h 5 min");
    expect(latencyBuckets([10, 61, 299, 5000, 9000]).map((b) => b.count)).toEqual([1, 2, 0, 1, 1]);
  });
});
