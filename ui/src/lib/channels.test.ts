import { describe, expect, it } from "vitest";
import { CHANNELS, orderIds } from "./channels";

describe("channels", () => {
  it("lists every channel once", () => {
    const values = CHANNELS.map((c) => c.value);
    expect(new Set(values).size).toBe(values.length);
    expect(values).toContain("whatsapp");
  });
  it("reads order ids from what the agent typed", () => {
    expect(orderIds(" #W1, #W2\n#W3 ")).toEqual(["#W1", "#W2", "#W3"]);
    expect(orderIds("   ")).toEqual([]);
  });
});
