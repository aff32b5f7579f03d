//! Declares the app's commands so that the capability file can allow exactly these.

const COMMANDS: &[&str] = &[
    "ui_ready",
    "app_info",
    "inbox",
    "open_case",
    "review_step",
    "replan_case",
    "edit_step",
    "check_reply",
    "send_reply",
    "evidence_blob",
    "open_citation",
    "case_events",
    "log_list",
    "log_verify",
    "log_export",
    "metrics",
    "pauses",
    "pause_set",
    "pause_clear",
    "credentials_list",
    "credential_set",
    "credential_delete",
    "update_check",
    "update_install",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build configuration");
}
