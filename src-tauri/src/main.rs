//! The Countersign desktop app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    match countersign_desktop::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-desktop: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
