// Keyboard-first navigation over a list (inbox rows, plan steps): J/K and arrows move,
// Home/End jump, Ctrl+Enter confirms, X rejects, E edits. Pure, so it is unit-tested without a DOM.

export type KeyAction =
  | { kind: "move"; index: number }
  | { kind: "confirm"; index: number }
  | { kind: "reject"; index: number }
  | { kind: "edit"; index: number }
  | { kind: "open"; index: number }
  | { kind: "none" };

export interface KeyLike {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
}

/** What a key press does to a list of `count` items with `current` focused (-1: none). */
export function keyAction(ev: KeyLike, current: number, count: number): KeyAction {
  if (count <= 0) return { kind: "none" };
  const at = Math.min(Math.max(current, 0), count - 1);
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && ev.key === "Enter") return current < 0 ? { kind: "none" } : { kind: "confirm", index: at };
  if (mod || ev.altKey) return { kind: "none" };
  switch (ev.key) {
    case "j":
    case "J":
    case "ArrowDown":
      return { kind: "move", index: current < 0 ? 0 : Math.min(at + 1, count - 1) };
    case "k":
    case "K":
    case "ArrowUp":
      return { kind: "move", index: current < 0 ? 0 : Math.max(at - 1, 0) };
    case "Home":
      return { kind: "move", index: 0 };
    case "End":
      return { kind: "move", index: count - 1 };
    case "Enter":
      return current < 0 ? { kind: "none" } : { kind: "open", index: at };
    case "x":
    case "X":
      return current < 0 ? { kind: "none" } : { kind: "reject", index: at };
    case "e":
    case "E":
      return current < 0 ? { kind: "none" } : { kind: "edit", index: at };
    default:
      return { kind: "none" };
  }
}

/** Keys typed into a form field belong to the field, not to list navigation. */
export function isTyping(target: EventTarget | null): boolean {
  if (!target || typeof (target as HTMLElement).tagName !== "string") return false;
  const el = target as HTMLElement;
  const tag = el.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable === true;
}

/** Whether `target` is a control that Enter already acts on (a button, a link, a summary):
 * a list's Enter-to-open must leave it alone. */
export function isControl(target: EventTarget | null): boolean {
  if (!target || typeof (target as HTMLElement).tagName !== "string") return false;
  const tag = (target as HTMLElement).tagName.toLowerCase();
  return tag === "button" || tag === "a" || tag === "summary";
}

/** R (no modifier) asks the inbox's sources for what is new ("Check now"). */
export function isCheckNow(ev: KeyLike): boolean {
  return (ev.key === "r" || ev.key === "R") && !ev.ctrlKey && !ev.metaKey && !ev.altKey;
}
