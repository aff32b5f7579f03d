import type { AppError } from "../bindings/AppError";
import type { ErrorCode } from "../bindings/ErrorCode";

const CODES: readonly ErrorCode[] = [
  "ConfigInvalid", "PolicyInvalid", "BadInput", "NotFound", "Conflict", "StoreFailed", "ConnectorFailed",
  "CredentialMissing", "KeyringUnavailable", "Io", "NotPermitted", "ApprovalStale", "Paused", "Internal",
];

/** Anything thrown by a command (or by the IPC layer itself) as an AppError. */
export function asAppError(e: unknown): AppError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    const o = e as { code: unknown; message: unknown; next_step?: unknown };
    if (typeof o.code === "string" && (CODES as readonly string[]).includes(o.code)) {
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
