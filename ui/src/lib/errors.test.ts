import { describe, expect, it } from "vitest";
import { asAppError } from "./errors";

describe("asAppError", () => {
  it("keeps the code of every error the app sends, the update errors included", () => {
    for (const code of ["UpdateRefused", "UpdateNotConfigured", "UpdateFailed", "PackRefused", "NeedsHuman"]) {
      const e = asAppError({ code, message: "m", next_step: "n" });
      expect(e).toEqual({ code, message: "m", next_step: "n" });
    }
  });
  it("turns anything else into Internal, with its text", () => {
    expect(asAppError({ code: "NoSuchCode", message: "m" }).code).toBe("Internal");
    expect(asAppError(new Error("boom"))).toMatchObject({ code: "Internal", message: "boom" });
    expect(asAppError("ipc down").message).toBe("ipc down");
  });
});
