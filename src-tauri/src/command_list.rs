// The app's commands, named once. `build.rs` declares them in the app manifest, `lib.rs`
// registers them (`invoke_handler`) and exposes their names (`COMMAND_NAMES`), and
// `tests/bindings.rs` writes the capability file's permissions and the UI's `Command` type
// from them (and fails when those drift). Each name is a function in `commands.rs`.
command_list! {
    ui_ready,
    app_info,
    inbox,
    sync_sources,
    watch_inbox,
    open_case,
    paste_case,
    review_step,
    replan_case,
    edit_step,
    check_reply,
    send_reply,
    deliver_reply,
    evidence_blob,
    open_citation,
    case_events,
    log_list,
    log_verify,
    log_export,
    metrics,
    pauses,
    pause_set,
    pause_clear,
    credentials_list,
    credential_set,
    credential_delete,
    update_check,
    update_install,
}
