import { describe, expect, it } from "vitest";
import { isCheckNow, isControl, isTyping, keyAction } from "./focus";

describe("keyAction", () => {
  it("J and K move down and up, clamped at the ends", () => {
    expect(keyAction({ key: "j" }, 0, 3)).toEqual({ kind: "move", index: 1 });
    expect(keyAction({ key: "j" }, 2, 3)).toEqual({ kind: "move", index: 2 });
    expect(keyAction({ key: "k" }, 1, 3)).toEqual({ kind: "move", index: 0 });
    expect(keyAction({ key: "k" }, 0, 3)).toEqual({ kind: "move", index: 0 });
    expect(keyAction({ key: "ArrowDown" }, 0, 3)).toEqual({ kind: "move", index: 1 });
  });
  it("the first J with nothing focused focuses the first item", () => {
    expect(keyAction({ key: "j" }, -1, 3)).toEqual({ kind: "move", index: 0 });
  });
  it("Ctrl+Enter confirms the focused item, never one that is not focused", () => {
    expect(keyAction({ key: "Enter", ctrlKey: true }, 1, 3)).toEqual({ kind: "confirm", index: 1 });
    expect(keyAction({ key: "Enter", metaKey: true }, 2, 3)).toEqual({ kind: "confirm", index: 2 });
    expect(keyAction({ key: "Enter", ctrlKey: true }, -1, 3)).toEqual({ kind: "none" });
  });
  it("a plain Enter opens, X rejects, other keys and modifiers do nothing", () => {
    expect(keyAction({ key: "Enter" }, 0, 3)).toEqual({ kind: "open", index: 0 });
    expect(keyAction({ key: "x" }, 2, 3)).toEqual({ kind: "reject", index: 2 });
    expect(keyAction({ key: "e" }, 1, 3)).toEqual({ kind: "edit", index: 1 });
    expect(keyAction({ key: "e" }, -1, 3)).toEqual({ kind: "none" });
    expect(keyAction({ key: "j", ctrlKey: true }, 0, 3)).toEqual({ kind: "none" });
    expect(keyAction({ key: "q" }, 0, 3)).toEqual({ kind: "none" });
  });
  it("an empty list does nothing", () => {
    expect(keyAction({ key: "j" }, -1, 0)).toEqual({ kind: "none" });
    expect(keyAction({ key: "Enter", ctrlKey: true }, 0, 0)).toEqual({ kind: "none" });
  });
});

describe("isTyping", () => {
  it("keys in form fields belong to the field", () => {
    expect(isTyping({ tagName: "TEXTAREA" } as unknown as EventTarget)).toBe(true);
    expect(isTyping({ tagName: "INPUT" } as unknown as EventTarget)).toBe(true);
    expect(isTyping({ tagName: "DIV", isContentEditable: false } as unknown as EventTarget)).toBe(false);
    expect(isTyping(null)).toBe(false);
  });
});

describe("isControl", () => {
  it("Enter on a button, link or summary is theirs, not the list's", () => {
    expect(isControl({ tagName: "BUTTON" } as unknown as EventTarget)).toBe(true);
    expect(isControl({ tagName: "A" } as unknown as EventTarget)).toBe(true);
    expect(isControl({ tagName: "SUMMARY" } as unknown as EventTarget)).toBe(true);
    expect(isControl({ tagName: "LI" } as unknown as EventTarget)).toBe(false);
    expect(isControl(null)).toBe(false);
  });
});

describe("isCheckNow", () => {
  it("is R without a modifier (Ctrl+R stays the webview's)", () => {
    expect(isCheckNow({ key: "r" })).toBe(true);
    expect(isCheckNow({ key: "R" })).toBe(true);
    expect(isCheckNow({ key: "r", ctrlKey: true })).toBe(false);
    expect(isCheckNow({ key: "r", altKey: true })).toBe(false);
    expect(isCheckNow({ key: "j" })).toBe(false);
  });
});
