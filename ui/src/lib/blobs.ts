// Screenshots and page snapshots named in an evidence payload: a browser step's pages
// (`{url, moment, screenshot: {sha256, media_type, bytes}, snapshot: {…}}`) wherever they
// sit in the payload (response, error details, a needs_human stop). Pure, so it is
// unit-tested without a DOM.

export interface BlobRef {
  kind: "screenshot" | "snapshot";
  hash: string;
  /** The page it was taken on, when the payload says. */
  url: string | null;
  /** When in the step (`before`, `filled`, `after`…), when the payload says. */
  moment: string | null;
}

const HASH = /^[0-9a-f]{64}$/;

/** Every screenshot/snapshot hash in `payload`, in document order, each once. */
export function blobRefs(payload: unknown): BlobRef[] {
  const out: BlobRef[] = [];
  const seen = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) {
      v.forEach(walk);
      return;
    }
    if (v === null || typeof v !== "object") return;
    const o = v as Record<string, unknown>;
    for (const kind of ["screenshot", "snapshot"] as const) {
      const named = o[kind];
      const h = typeof named === "object" && named !== null ? (named as Record<string, unknown>).sha256 : named;
      if (typeof h === "string" && HASH.test(h) && !seen.has(h)) {
        seen.add(h);
        out.push({
          kind,
          hash: h,
          url: typeof o.url === "string" ? o.url : null,
          moment: typeof o.moment === "string" ? o.moment : null,
        });
      }
    }
    for (const [k, child] of Object.entries(o)) {
      if (k !== "screenshot" && k !== "snapshot") walk(child);
    }
  };
  walk(payload);
  return out;
}

/** Decode a base64 blob as UTF-8 text (page snapshots are HTML). */
export function base64Text(b64: string): string {
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}
