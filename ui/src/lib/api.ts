// The commands of the desktop shell, typed with the declarations generated from the Rust
// types (src/bindings/). Every failure is an AppError { code, message, next_step }.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { AppError } from "../bindings/AppError";
import type { AppInfo } from "../bindings/AppInfo";
import type { BlobView } from "../bindings/BlobView";
import type { CaseView } from "../bindings/CaseView";
import type { Command } from "../bindings/Command";
import type { CredentialList } from "../bindings/CredentialList";
import type { EventView } from "../bindings/EventView";
import type { ExportView } from "../bindings/ExportView";
import type { InboxItem } from "../bindings/InboxItem";
import type { LeadProof } from "../bindings/LeadProof";
import type { LogQuery } from "../bindings/LogQuery";
import type { Metrics } from "../bindings/Metrics";
import type { PassageView } from "../bindings/PassageView";
import type { PauseScope } from "../bindings/PauseScope";
import type { PauseView } from "../bindings/PauseView";
import type { Decision } from "../bindings/Decision";
import type { Progress } from "../bindings/Progress";
import type { ReplyCheck } from "../bindings/ReplyCheck";
import type { UpdateCheck } from "../bindings/UpdateCheck";
import type { Verdict } from "../bindings/Verdict";
import type { VerifyView } from "../bindings/VerifyView";
import { asAppError } from "./errors";

// `cmd` is one of the app's commands (the generated `Command` type): a name the Rust side
// does not list fails the type check.
async function call<T>(cmd: Command, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asAppError(e);
  }
}

function channel(onProgress: (p: Progress) => void): Channel<Progress> {
  const ch = new Channel<Progress>();
  ch.onmessage = onProgress;
  return ch;
}

export const api = {
  uiReady: (rows: number) => call<null>("ui_ready", { rows }),
  appInfo: () => call<AppInfo>("app_info"),
  inbox: () => call<InboxItem[]>("inbox"),
  openCase: (caseId: string, onProgress: (p: Progress) => void) =>
    call<CaseView>("open_case", { caseId, onProgress: channel(onProgress) }),
  reviewStep: (
    a: { caseId: string; planId: string; stepId: string; verdict: Verdict; reason: string; lead: LeadProof | null },
    onProgress: (p: Progress) => void,
  ) => call<CaseView>("review_step", { ...a, onProgress: channel(onProgress) }),
  replanCase: (caseId: string, onProgress: (p: Progress) => void) =>
    call<CaseView>("replan_case", { caseId, onProgress: channel(onProgress) }),
  editStep: (
    a: { caseId: string; planId: string; stepId: string; changes: Record<string, string>; reason: string },
    onProgress: (p: Progress) => void,
  ) => call<CaseView>("edit_step", { ...a, onProgress: channel(onProgress) }),
  checkReply: (caseId: string, planId: string, text: string) =>
    call<ReplyCheck>("check_reply", { caseId, planId, text }),
  sendReply: (a: { caseId: string; planId: string; text: string; seen: Decision; lead: LeadProof | null }) =>
    call<CaseView>("send_reply", a),
  evidenceBlob: (hash: string) => call<BlobView>("evidence_blob", { hash }),
  openCitation: (caseId: string, index: number) => call<PassageView>("open_citation", { caseId, index }),
  caseEvents: (caseId: string) => call<EventView[]>("case_events", { caseId }),
  logList: (query: LogQuery) => call<EventView[]>("log_list", { query }),
  logVerify: () => call<VerifyView>("log_verify"),
  logExport: () => call<ExportView>("log_export"),
  metrics: () => call<Metrics>("metrics"),
  pauses: (all: boolean) => call<PauseView[]>("pauses", { all }),
  pauseSet: (scope: PauseScope, value: string, reason: string) => call<string>("pause_set", { scope, value, reason }),
  pauseClear: (id: string, reason: string) => call<null>("pause_clear", { id, reason }),
  credentialsList: () => call<CredentialList>("credentials_list"),
  credentialSet: (name: string, value: string) => call<string>("credential_set", { name, value }),
  credentialDelete: (name: string) => call<string>("credential_delete", { name }),
  updateCheck: () => call<UpdateCheck>("update_check"),
  updateInstall: (version: string) => call<string>("update_install", { version }),
};

export type { AppError };
