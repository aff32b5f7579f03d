import type { Channel } from "../bindings/Channel";

// Every channel a case can come from, labelled; checked against the generated `Channel`
// type, so a channel added in Rust and not here fails `npm run check`.
const LABELS: Record<Channel, string> = {
  chat: "Chat",
  email: "Email",
  instagram_dm: "Instagram DM",
  tiktok_dm: "TikTok DM",
  facebook_messenger: "Facebook Messenger",
  whatsapp: "WhatsApp",
  phone: "Phone",
  web_form: "Web form",
};

export const CHANNELS: readonly { value: Channel; label: string }[] = Object.entries(LABELS).map(([value, label]) => ({
  value: value as Channel,
  label,
}));

/** The orders named in free text, one per line or separated by commas or spaces. */
export function orderIds(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
