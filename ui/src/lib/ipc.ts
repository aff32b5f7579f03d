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

// A command's channel (progress of a long command, or the inbox's changes): each message
// goes to `on`.
export function channel<T = Progress>(on: (p: T) => void): Channel<T> {
  const ch = new Channel<T>();
  ch.onmessage = on;
  return ch;
}
