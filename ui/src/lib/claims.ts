// Marks the sentences of the reply draft whose claims the policy found no cited passage
// for (or found one contradicting), so the agent sees which sentence needs a source and
// why. The spans come from the check (UTF-16 offsets into the text that was checked); the
// draft may have changed since, so a span is trusted only where it still holds the
// sentence, and otherwise the sentence is looked up in the draft.

import type { ClaimView } from "../bindings/ClaimView";
import type { Piece } from "./highlight";

/** A piece of the draft; a marked one carries the reasons of the claims its sentence makes. */
export interface ClaimPiece extends Piece {
  reasons: string[];
}

/** The claims that need the agent: unsupported or contradicted. */
export function flaggedClaims(claims: ClaimView[]): ClaimView[] {
  return claims.filter((c) => c.status !== "supported");
}

/** Where `claim`'s sentence is in `text` now, or null when it is no longer there. */
export function locate(text: string, claim: ClaimView): [number, number] | null {
  if (text.slice(claim.start, claim.end) === claim.sentence) return [claim.start, claim.end];
  const i = claim.sentence ? text.indexOf(claim.sentence) : -1;
  return i < 0 ? null : [i, i + claim.sentence.length];
}

/** `text` cut into pieces, the sentences of flagged claims marked with their reasons. */
export function markClaims(text: string, claims: ClaimView[]): ClaimPiece[] {
  const ranges: { s: number; e: number; reasons: string[] }[] = [];
  for (const c of flaggedClaims(claims)) {
    const at = locate(text, c);
    if (!at) continue;
    const reason = `${c.claim} (${c.status}): ${c.reason}`;
    const same = ranges.find((r) => r.s === at[0] && r.e === at[1]);
    if (same) same.reasons.push(reason);
    else ranges.push({ s: at[0], e: at[1], reasons: [reason] });
  }
  ranges.sort((a, b) => a.s - b.s);
  const out: ClaimPiece[] = [];
  let at = 0;
  for (const r of ranges) {
    if (r.s < at) continue; // sentences do not overlap; a stale span that would is dropped
    if (r.s > at) out.push({ text: text.slice(at, r.s), flagged: false, reasons: [] });
    out.push({ text: text.slice(r.s, r.e), flagged: true, reasons: r.reasons });
    at = r.e;
  }
  if (at < text.length) out.push({ text: text.slice(at), flagged: false, reasons: [] });
  return out;
}
