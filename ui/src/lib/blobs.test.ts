import { describe, expect, it } from "vitest";
import { base64Text, blobRefs } from "./blobs";

const a = "a".repeat(64);
const b = "b".repeat(64);
const c = "c".repeat(64);

describe("blobRefs", () => {
  it("finds a browser step's screenshots and snapshots with their page and moment, in order", () => {
    const payload = {
      outcome: "succeeded",
      response: {
        pages: [
          {
            moment: "before",
            url: "http://127.0.0.1/orders/1",
            screenshot: { sha256: a, media_type: "image/png", bytes: 100, stored: true },
            snapshot: { sha256: b, media_type: "text/html", bytes: 10, stored: true },
          },
          { moment: "after", url: "http://127.0.0.1/orders/1/done", screenshot: { sha256: c } },
        ],
      },
    };
    expect(blobRefs(payload)).toEqual([
      { kind: "screenshot", hash: a, url: "http://127.0.0.1/orders/1", moment: "before" },
      { kind: "snapshot", hash: b, url: "http://127.0.0.1/orders/1", moment: "before" },
      { kind: "screenshot", hash: c, url: "http://127.0.0.1/orders/1/done", moment: "after" },
    ]);
  });
  it("takes a bare hash too, lists a blob named twice once, and ignores values that are not hashes", () => {
    const payload = { before: { screenshot: a }, after: { screenshot: a, snapshot: "not-a-hash" }, x: [null, 3] };
    expect(blobRefs(payload)).toEqual([{ kind: "screenshot", hash: a, url: null, moment: null }]);
  });
  it("finds nothing in an HTTP step", () => {
    expect(blobRefs({ request: { method: "POST" }, response: { status: 200 } })).toEqual([]);
  });
});

describe("base64Text", () => {
  it("decodes UTF-8", () => {
    expect(base64Text(btoa(String.fromCharCode(...new TextEncoder().encode("<p>café</p>"))))).toBe("<p>café</p>");
  });
});
