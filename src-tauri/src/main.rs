//! The Countersign desktop app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // `--version` and `--help` print and exit here, before Tauri (or a display) is needed.
    let args = <countersign_desktop::Args as clap::Parser>::parse();
    match countersign_desktop::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-desktop: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
