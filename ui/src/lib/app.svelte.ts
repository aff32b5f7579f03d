// App-wide state: which screen, the workspace info, the active pauses (for the banner).
import type { AppError } from "../bindings/AppError";
import type { AppInfo } from "../bindings/AppInfo";
import type { InboxChanged } from "../bindings/InboxChanged";
import type { PauseView } from "../bindings/PauseView";
import { api } from "./api";

export type Screen = "inbox" | "case" | "evidence" | "lead" | "pause" | "settings";

export const app = $state({
  screen: "inbox" as Screen,
  caseId: null as string | null,
  info: null as AppInfo | null,
  infoError: null as AppError | null,
  pauses: [] as PauseView[],
  /** Bumped each time a background sync records something: the inbox reloads on it. */
  inboxChanges: 0,
  lastChange: null as InboxChanged | null,
});

/** Hear of what the app's background syncs record (new conversations, new messages). */
export async function watchInbox() {
  try {
    await api.watchInbox((c) => {
      app.lastChange = c;
      app.inboxChanges += 1;
    });
  } catch {
    // the inbox still loads, and "Check now" still works
  }
}

export function go(screen: Screen, caseId?: string) {
  if (caseId !== undefined) app.caseId = caseId;
  app.screen = screen;
}

export async function loadInfo() {
  try {
    app.info = await api.appInfo();
    app.infoError = null;
  } catch (e) {
    app.infoError = e as AppError;
  }
}

export async function refreshPauses() {
  try {
    app.pauses = await api.pauses(false);
  } catch {
    // the Pause screen shows the error; the banner keeps what it knew
  }
}
