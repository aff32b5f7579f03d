// The commands of the desktop shell, generated from their Rust signatures
// (src-tauri/src/commands.rs → src/bindings/commands.ts).
export { commands as api } from "../bindings/commands";
