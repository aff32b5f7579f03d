import type { AppError } from "../bindings/AppError";
import type { ErrorCode } from "../bindings/ErrorCode";

// Every code, checked against the generated ErrorCode type: a code added in Rust and not
// here fails `npm run check`, so it can never be turned into "Internal" on the way.
const KNOWN: Record<ErrorCode, true> = {
  ConfigInvalid: true, PolicyInvalid: true, BadInput: true, NotFound: true, Conflict: true, StoreFailed: true,
  ConnectorFailed: true, CredentialMissing: true, KeyringUnavailable: true, Io: true, NotPermitted: true,
  ApprovalStale: true, Paused: true, PlannerFailed: true, PackRefused: true, ReleaseInvalid: true,
  NeedsHuman: true, Internal: true, UpdateNotConfigured: true, UpdateRefused: true, UpdateFailed: true,
  TeamUnreachable: true, EncoderFetchFailed: true,
};
const CODES: readonly string[] = Object.keys(KNOWN);

/** Anything thrown by a command (or by the IPC layer itself) as an AppError. */
export function asAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    const o = e as { code: unknown; message: unknown; next_step?: unknown };
    if (typeof o.code === "string" && CODES.includes(o.code)) {
      return {
        code: o.code as ErrorCode,
        message: String(o.message),
        next_step: typeof o.next_step === "string" ? o.next_step : "Try again.",
      };
    }
  }
  const message = e instanceof Error ? e.message : typeof e === "string" ? e : JSON.stringify(e);
  return { code: "Internal", message, next_step: "Restart the app; if it happens again, send the log file from Settings." };
}
