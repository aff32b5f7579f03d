import { describe, expect, it } from "vitest";
import { highlight } from "./highlight";

describe("highlight", () => {
  it("marks every occurrence of a flagged phrase, ignoring case", () => {
    const p = highlight("We guarantee delivery. Guarantee!", ["guarantee"]);
    expect(p).toEqual([
      { text: "We ", flagged: false },
      { text: "guarantee", flagged: true },
      { text: " delivery. ", flagged: false },
      { text: "Guarantee", flagged: true },
      { text: "!", flagged: false },
    ]);
  });
  it("merges overlapping phrases and leaves text whole when nothing matches", () => {
    expect(highlight("full refund today", ["full refund", "refund today"])).toEqual([
      { text: "full refund today", flagged: true },
    ]);
    expect(highlight("hello", ["bye", ""])).toEqual([{ text: "hello", flagged: false }]);
  });
});
