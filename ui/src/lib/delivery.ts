// What the Case screen says about a sent reply's delivery to the customer's channel, and
// whether the agent may post it again. Pure, so it is unit-tested without a DOM.
import type { SentView } from "../bindings/SentView";

export interface DeliveryLine {
  /** `ok` (delivered, or nothing to deliver), `wait` (not settled yet), `bad` (refused). */
  tone: "ok" | "wait" | "bad";
  text: string;
  /** "Post again" is offered: pending, unknown and failed replies (the engine settles an
   * uncertain earlier attempt first, so the customer never gets it twice). */
  retry: boolean;
}

export function deliveryLine(sent: Pick<SentView, "delivery" | "message_id" | "delivery_error">): DeliveryLine {
  switch (sent.delivery) {
    case "local":
      return { tone: "ok", text: "Recorded here (this case is not from a channel: nothing is posted).", retry: false };
    case "delivered":
      return { tone: "ok", text: `Delivered to the customer (message ${sent.message_id ?? "id not given"}).`, retry: false };
    case "pending":
      return { tone: "wait", text: "Not delivered yet: no attempt to post it has finished.", retry: true };
    case "unknown":
      return {
        tone: "wait",
        text: `Delivery unknown: it may have landed (${sent.delivery_error ?? "no answer"}). Posting again checks first.`,
        retry: true,
      };
    case "failed":
      return { tone: "bad", text: `Not delivered: ${sent.delivery_error ?? "the platform refused it"}.`, retry: true };
    default:
      return { tone: "wait", text: `Delivery: ${sent.delivery}.`, retry: false };
  }
}

/** What a sync found, in a few words ("2 new, 1 updated"; "nothing new"). */
export function syncSummary(reports: { new_cases: number; updated: number; more: boolean }[]): string {
  const n = reports.reduce((a, r) => a + r.new_cases, 0);
  const u = reports.reduce((a, r) => a + r.updated, 0);
  if (reports.length === 0) return "This workspace names no sources.";
  const more = reports.some((r) => r.more) ? "; more waiting" : "";
  if (n === 0 && u === 0) return `Nothing new${more}.`;
  return `${n} new, ${u} updated${more}.`;
}
