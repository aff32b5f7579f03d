import { describe, expect, it } from "vitest";
import type { ClaimView } from "../bindings/ClaimView";
import { flaggedClaims, markClaims } from "./claims";

function claim(text: string, sentence: string, over: Partial<ClaimView> = {}): ClaimView {
  const start = text.indexOf(sentence);
  return {
    sentence,
    start,
    end: start + sentence.length,
    claim: "30 minutes",
    kind: "duration",
    status: "unsupported",
    citation: null,
    reason: 'no cited passage states "30 minutes"',
    ...over,
  };
}

describe("claims", () => {
  const text = "Hi Évelyne 👋,\nReturn it within 30 minutes. [1]\nReturns are free. [1]\nBest regards";

  it("marks the sentence of each flagged claim with its reasons, by its span", () => {
    const c = claim(text, "Return it within 30 minutes. [1]");
    const pieces = markClaims(text, [c, claim(text, "Returns are free. [1]", { status: "supported" })]);
    expect(pieces.map((p) => p.text).join("")).toBe(text);
    const marked = pieces.filter((p) => p.flagged);
    expect(marked).toHaveLength(1);
    expect(marked[0].text).toBe("Return it within 30 minutes. [1]");
    expect(marked[0].reasons).toEqual(['30 minutes (unsupported): no cited passage states "30 minutes"']);
  });

  it("gathers the claims of one sentence and finds a sentence the agent moved", () => {
    const moved = "Thanks!\n" + text;
    const a = claim(text, "Returns are free. [1]", { claim: "free", status: "contradicted", reason: "a fee applies" });
    const b = claim(text, "Returns are free. [1]", { claim: "free", reason: "again" });
    const pieces = markClaims(moved, [a, b]);
    const marked = pieces.filter((p) => p.flagged);
    expect(marked.map((p) => p.text)).toEqual(["Returns are free. [1]"]);
    expect(marked[0].reasons).toHaveLength(2);
    expect(pieces.map((p) => p.text).join("")).toBe(moved);
  });

  it("leaves the text whole when a flagged sentence is gone, and keeps only what needs the agent", () => {
    const gone = claim(text, "Return it within 30 minutes. [1]");
    expect(markClaims("Hi,\nAll fixed.", [gone])).toEqual([{ text: "Hi,\nAll fixed.", flagged: false, reasons: [] }]);
    expect(flaggedClaims([gone, { ...gone, status: "supported" }])).toEqual([gone]);
  });
});
