// Numbers for the team lead's SVG charts. Counts are integers; widths are pixels.
import type { OutcomeCounts } from "../bindings/OutcomeCounts";

export const SERIES = [
  { key: "auto_run", label: "auto-run", color: "#3b7d4f" },
  { key: "confirmed", label: "confirmed", color: "#2f5fa8" },
  { key: "rejected", label: "rejected", color: "#b0562a" },
  { key: "forbidden", label: "forbidden", color: "#8c1d2f" },
  { key: "waiting", label: "waiting", color: "#9a8a2b" },
] as const;

export type SeriesKey = (typeof SERIES)[number]["key"];

export function total(c: OutcomeCounts): number {
  return SERIES.reduce((n, s) => n + c[s.key], 0);
}

export interface Segment {
  key: SeriesKey;
  label: string;
  color: string;
  x: number;
  width: number;
  count: number;
}

/** A stacked horizontal bar: segments scaled so that `max` items fill `width` pixels. */
export function stack(c: OutcomeCounts, max: number, width: number): Segment[] {
  const out: Segment[] = [];
  let x = 0;
  if (max <= 0) return out;
  for (const s of SERIES) {
    const count = c[s.key];
    if (count === 0) continue;
    const w = (count / max) * width;
    out.push({ key: s.key, label: s.label, color: s.color, x, width: w, count });
    x += w;
  }
  return out;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : Math.round((v[mid - 1] + v[mid]) / 2);
}

/** "42 s", "3 min", "2 h 5 min". */
export function duration(secs: number): string {
  if (secs < 60) return `${secs} s`;
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min`;
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** Latencies bucketed for a histogram: < 1 min, < 5 min, < 30 min, < 2 h, longer. */
export function latencyBuckets(secs: number[]): { label: string; count: number }[] {
  const edges = [60, 300, 1800, 7200];
  const labels = ["< 1 min", "< 5 min", "< 30 min", "< 2 h", "≥ 2 h"];
  const counts = labels.map(() => 0);
  for (const s of secs) {
    const i = edges.findIndex((e) => s < e);
    counts[i === -1 ? edges.length : i] += 1;
  }
  return labels.map((label, i) => ({ label, count: counts[i] }));
}
