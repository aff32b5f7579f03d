import { describe, expect, it } from "vitest";
import { deliveryLine, syncSummary } from "./delivery";

const sent = (delivery: string, message_id: string | null = null, delivery_error: string | null = null) => ({
  delivery,
  message_id,
  delivery_error,
});

describe("deliveryLine", () => {
  it("names the platform's message id once delivered, and offers nothing more", () => {
    const d = deliveryLine(sent("delivered", "M-0042"));
    expect(d).toMatchObject({ tone: "ok", retry: false });
    expect(d.text).toContain("M-0042");
  });
  it("offers Post again while the reply is pending, unknown or failed", () => {
    expect(deliveryLine(sent("pending")).retry).toBe(true);
    const unknown = deliveryLine(sent("unknown", null, "timed out"));
    expect(unknown).toMatchObject({ tone: "wait", retry: true });
    expect(unknown.text).toContain("timed out");
    const failed = deliveryLine(sent("failed", null, "422 conversation_closed"));
    expect(failed).toMatchObject({ tone: "bad", retry: true });
    expect(failed.text).toContain("422 conversation_closed");
  });
  it("posts nothing for a case that came from no channel", () => {
    expect(deliveryLine(sent("local"))).toMatchObject({ tone: "ok", retry: false });
  });
  it("never offers a retry for a state it does not know", () => {
    expect(deliveryLine(sent("exploded")).retry).toBe(false);
  });
});

describe("syncSummary", () => {
  it("adds the sources up", () => {
    const r = (new_cases: number, updated: number, more = false) => ({ new_cases, updated, more });
    expect(syncSummary([r(2, 0), r(0, 1)])).toBe("2 new, 1 updated.");
    expect(syncSummary([r(0, 0)])).toBe("Nothing new.");
    expect(syncSummary([r(0, 0, true)])).toBe("Nothing new; more waiting.");
    expect(syncSummary([])).toBe("This workspace names no sources.");
  });
});
