// How the generated command wrappers (src/bindings/commands.ts) reach the Rust side: every
// failure becomes an AppError { code, message, next_step }, and progress arrives on a channel.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { Command } from "../bindings/Command";
import type { Progress } from "../bindings/Progress";
import { asAppError } from "./errors";

// `cmd` is one of the app's commands (the generated `Command` type): a name the Rust side
// does not list fails the type check.
export async function call<T>(cmd: Command, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw asAppError(e);
  }
}

export function channel(onProgress: (p: Progress) => void): Channel<Progress> {
  const ch = new Channel<Progress>();
  ch.onmessage = onProgress;
  return ch;
}
