import { describe, expect, it } from "vitest";
import { diff, flatten } from "./diff";

describe("diff", () => {
  it("lists changed, added and removed fields first, by path", () => {
    const rows = diff(
      { status: "pending", total: "12.50", items: [{ id: "a" }], note: "x" },
      { status: "cancelled", total: "12.50", items: [{ id: "a" }], refund: { amount: "12.50" } },
    );
    expect(rows.map((r) => [r.path, r.change])).toEqual([
      ["note", "removed"],
      ["refund.amount", "added"],
      ["status", "changed"],
      ["items[0].id", "same"],
      ["total", "same"],
    ]);
    expect(rows[2]).toMatchObject({ before: '"pending"', after: '"cancelled"' });
  });
  it("keeps decimal strings as written (money is never a float)", () => {
    expect(flatten({ amount: "10.10" }).get("amount")).toBe('"10.10"');
  });
  it("treats a missing side as all added or all removed", () => {
    expect(diff(null, { a: 1 }).map((r) => [r.path, r.change])).toEqual([["a", "added"]]);
    expect(diff({ a: 1 }, null).map((r) => [r.path, r.change])).toEqual([["a", "removed"]]);
    expect(diff("x", "y").map((r) => [r.path, r.change])).toEqual([["(value)", "changed"]]);
  });
});
