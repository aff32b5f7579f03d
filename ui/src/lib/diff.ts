// Before/after state of a step as a list of changed fields (dotted paths), for the
// evidence timeline.

export type Change = "added" | "removed" | "changed" | "same";
export interface DiffRow {
  path: string;
  before: string | undefined;
  after: string | undefined;
  change: Change;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Flatten JSON into path → JSON text of each leaf (empty objects and arrays are leaves). */
export function flatten(value: unknown, prefix = "", out: Map<string, string> = new Map()): Map<string, string> {
  const v = value as Json;
  if (Array.isArray(v) && v.length > 0) {
    v.forEach((item, i) => flatten(item, `${prefix}[${i}]`, out));
  } else if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const k of Object.keys(v).sort()) flatten(v[k], prefix ? `${prefix}.${k}` : k, out);
  } else if (v === null && prefix === "") {
    // no state at all (a read has no before-state): nothing to list
  } else if (v !== undefined) {
    out.set(prefix || "(value)", JSON.stringify(v));
  }
  return out;
}

/** Every field of before and after, changed ones first when `changedFirst`. */
export function diff(before: unknown, after: unknown, changedFirst = true): DiffRow[] {
  const b = flatten(before);
  const a = flatten(after);
  const paths = [...new Set([...b.keys(), ...a.keys()])].sort();
  const rows = paths.map((path): DiffRow => {
    const x = b.get(path);
    const y = a.get(path);
    const change: Change = x === undefined ? "added" : y === undefined ? "removed" : x === y ? "same" : "changed";
    return { path, before: x, after: y, change };
  });
  if (!changedFirst) return rows;
  return [...rows.filter((r) => r.change !== "same"), ...rows.filter((r) => r.change === "same")];
}
