// App-wide state: which screen, the workspace info, the active pauses (for the banner).
import type { AppError } from "../bindings/AppError";
import type { AppInfo } from "../bindings/AppInfo";
import type { InboxChanged } from "../bindings/InboxChanged";
import type { PauseView } from "../bindings/PauseView";
import type { TeamStatus } from "../bindings/TeamStatus";
import { api } from "./api";

export type Screen = "inbox" | "case" | "evidence" | "lead" | "pause" | "settings";

export const app = $state({
  screen: "inbox" as Screen,
  caseId: null as string | null,
  info: null as AppInfo | null,
  infoError: null as AppError | null,
  pauses: [] as PauseView[],
  /** Where this desktop stands with its team (null: it works alone). */
  team: null as TeamStatus | null,
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

/**
 * Keep the team line and the pauses current: a lead's pause arrives from the team plane
 * at any time, and a desktop without a fresh lease must say so at once.
 */
export function watchTeam(everyMs = 3000): () => void {
  const tick = async () => {
    try {
      app.team = await api.teamStatus();
    } catch {
      // keep what was known; the next tick tries again
    }
    if (app.team) await refreshPauses();
    // A pack the team published loads while the app runs: show the policy it runs now.
    const policy = app.info?.policy;
    if (app.team && policy && (app.team.policy_hash !== policy.hash || app.team.pack_digest !== policy.pack_digest)) {
      await loadInfo();
    }
  };
  void tick();
  const timer = setInterval(tick, everyMs);
  return () => clearInterval(timer);
}
