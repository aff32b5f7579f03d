// Marks the phrases the policy flagged as promises inside the reply draft, so the agent
// sees exactly which words need review. Case-insensitive; overlapping matches merge.

export interface Piece {
  text: string;
  flagged: boolean;
}

export function highlight(text: string, phrases: string[]): Piece[] {
  const lower = text.toLowerCase();
  const ranges: [number, number][] = [];
  for (const p of phrases) {
    const needle = p.trim().toLowerCase();
    if (!needle) continue;
    let from = 0;
    for (;;) {
      const i = lower.indexOf(needle, from);
      if (i < 0) break;
      ranges.push([i, i + needle.length]);
      from = i + needle.length;
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const out: Piece[] = [];
  let at = 0;
  for (const [s, e] of merged) {
    if (s > at) out.push({ text: text.slice(at, s), flagged: false });
    out.push({ text: text.slice(s, e), flagged: true });
    at = e;
  }
  if (at < text.length) out.push({ text: text.slice(at), flagged: false });
  return out;
}
