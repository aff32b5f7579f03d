//! # countersign-desktop
//!
//! The desktop app: a Tauri v2 shell around [`countersign_engine`].
//!
//! **Architecture invariant:** this is the only crate that knows Tauri, and it holds no
//! policy logic, no SQL and no file I/O of its own in commands: each command in
//! [`commands`] calls the engine and maps the result to a view in [`dto`] (whose
//! TypeScript declarations in `ui/src/bindings/` are generated from these types). The
//! state is built in full before it is managed ([`state::AppState::build`]). To add a
//! command: write it in `commands.rs`, add its name to `command_list.rs`, and regenerate
//! the bindings and the capability file
//! (`UPDATE_BINDINGS=1 cargo test -p countersign-desktop --test bindings`). The live inbox
//! (sources synced in the background, notifications) is [`live`].

pub mod commands;
pub mod dto;
pub mod live;
pub mod state;
pub mod updates;
pub mod view;

use std::path::PathBuf;

use tauri::Manager;

use crate::state::{Locations, Shell};

/// The name the app goes by (tauri.conf.json `productName`).
pub const PRODUCT_NAME: &str = "Countersign";

/// The command line: `--help` and `--version` are answered before Tauri starts, so they
/// need no display. `--workspace` and `--data-dir` override the environment; any other
/// arguments are ignored (a second launch hands them to the first instance, which only
/// comes to the front).
#[derive(Debug, clap::Parser)]
#[command(
    name = PRODUCT_NAME,
    bin_name = "countersign-desktop",
    version,
    about = "Countersign: governed actions for support teams (the desktop app).",
    long_about = "Countersign: governed actions for support teams (the desktop app).\n\n\
                  Environment: COUNTERSIGN_WORKSPACE (a workspace.toml; default: the demo), \
                  COUNTERSIGN_DATA_DIR, COUNTERSIGN_DEMO_STORE=off, COUNTERSIGN_LOG (log filter).",
    ignore_errors = true
)]
pub struct Args {
    /// A workspace.toml to open (default: $COUNTERSIGN_WORKSPACE, else the demo workspace).
    #[arg(long, value_name = "FILE")]
    pub workspace: Option<PathBuf>,
    /// The data root: one folder per workspace, shared with the command line (default:
    /// $COUNTERSIGN_DATA_DIR, else `countersign/` in the user data dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where the project's `assets/` are: `$COUNTERSIGN_ASSETS`, else the copy bundled with the
/// app, else the source tree the binary was built from (development).
fn assets_dir(resource_dir: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = std::env::var_os("COUNTERSIGN_ASSETS") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = resource_dir.map(|r| r.join("demo")).filter(|d| d.join("demo/workspace.toml").is_file()) {
        return dir;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// When the process started running Rust code (for the launch time `ui_ready` logs).
pub static LAUNCHED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Build and run the app; returns when the last window closes.
pub fn run(args: Args) -> anyhow::Result<()> {
    LAUNCHED.get_or_init(std::time::Instant::now);
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_updater::Builder::new().build())
        // Notifications are sent from here (`live::announce`); the webview gets none of the
        // plugin's commands (the capability file lists ours only).
        .plugin(tauri_plugin_notification::init())
        .manage(updates::Pending::default())
        .manage(live::Intake::default())
        .manage(live::Watcher::default())
        .setup(move |app| {
            let paths = app.path();
            let log_dir = paths.app_log_dir()?;
            std::fs::create_dir_all(&log_dir)?;
            let guard = countersign_host::logging::init(Some(&log_dir), "info");
            let loc = Locations {
                assets: assets_dir(paths.resource_dir().ok()),
                workspace: args
                    .workspace
                    .clone()
                    .or_else(|| std::env::var_os("COUNTERSIGN_WORKSPACE").map(PathBuf::from)),
                root: countersign_host::DataRoot::resolve(args.data_dir.clone())?,
                log_dir,
                live_demo: std::env::var("COUNTERSIGN_DEMO_STORE").map_or(true, |v| v != "off"),
            };
            app.manage(Shell::default());
            let handle = app.handle().clone();
            std::thread::Builder::new().name("open-workspace".into()).spawn(move || {
                let shell = handle.state::<Shell>();
                shell.open(&loc);
                // The same thread then keeps the inbox live until the app exits.
                if let Ok(state) = shell.get() {
                    // In a team, its pauses and leases reach the engine as they arrive.
                    if let Some(link) = state.team.clone() {
                        let team_handle = handle.clone();
                        let _ = std::thread::Builder::new().name("team-link".into()).spawn(move || {
                            if let Ok(state) = team_handle.state::<Shell>().get() {
                                // Runs as long as the app does.
                                static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
                                let lead = state.engine.team_status().is_some_and(|s| s.role != "agent");
                                countersign_host::team::pump(&state.engine, &link, &NEVER, &|outcome| {
                                    if lead && *outcome == countersign_engine::team::EntryOutcome::Request {
                                        live::notify(
                                            &team_handle,
                                            "Countersign: a step waits for a lead",
                                            "A supervisor step of the team waits in your queue (Team lead screen).",
                                        );
                                    }
                                });
                            }
                        });
                    }
                    // Promises made in sent replies are checked once their day has passed: at
                    // start, then hourly, as long as the app runs.
                    let promise_handle = handle.clone();
                    let _ = std::thread::Builder::new().name("promise-checks".into()).spawn(move || {
                        if let Ok(state) = promise_handle.state::<Shell>().get() {
                            loop {
                                match state.engine.check_promises() {
                                    Ok(sweep) if !sweep.checked.is_empty() || !sweep.unreadable.is_empty() => {
                                        tracing::info!(
                                            checked = sweep.checked.len(),
                                            unreadable = sweep.unreadable.len(),
                                            "promises checked"
                                        );
                                    }
                                    Ok(_) => {}
                                    Err(e) => tracing::warn!(error = %e, "the promises could not be checked"),
                                }
                                std::thread::sleep(std::time::Duration::from_secs(3600));
                            }
                        }
                    });
                    // Sources that push (webhooks) wake their sync at once; the listeners
                    // stop when this thread ends with the app.
                    let waker = handle.clone();
                    let _push = live::listen_for_push(&state.engine, move |source| {
                        waker.state::<live::Intake>().push(source);
                    });
                    handle.state::<live::Intake>().run(&state.engine, &|c| live::announce(&handle, c));
                }
            })?;
            if let Some(w) = app.get_webview_window("main")
                && !std::env::var("COUNTERSIGN_GPU").is_ok_and(|v| v == "on")
            {
                lean_webview(&w);
            }
            app.manage(LogGuard(std::sync::Mutex::new(guard)));
            Ok(())
        })
        .invoke_handler(invoke_handler())
        .build(context())?
        .run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                app.state::<live::Intake>().stop();
            }
        });
    Ok(())
}

/// The app's context (tauri.conf.json, the capability that lists the commands the UI may
/// call, the built UI), generated once; tests run the command layer under the same
/// capability in a mock app.
pub fn context<R: tauri::Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Every command the UI may call, from the one list (`command_list.rs`): the handler the
/// app registers (tests drive the same one in a mock app) and the names, which the
/// capability file and the UI's `Command` type are generated from.
macro_rules! command_list {
    ($($name:ident),* $(,)?) => {
        /// The commands' names, as the webview invokes them.
        pub const COMMAND_NAMES: &[&str] = &[$(stringify!($name)),*];

        /// The handler of every command in the list.
        pub fn invoke_handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(commands::$name),*]
        }
    };
}
include!("command_list.rs");

/// Render without GPU compositing on Linux unless `COUNTERSIGN_GPU=on`. The app is forms
/// and lists, and WebKitGTK's compositing keeps GL surfaces resident in the web process:
/// without it the idle app takes about 80 MB less PSS and reaches a usable inbox sooner
/// (docs/benchmarks.md), and it also avoids the blank windows some GPU drivers give
/// composited WebKitGTK. The policy applies to the page already loading.
fn lean_webview(w: &tauri::WebviewWindow) {
    #[cfg(target_os = "linux")]
    if let Err(e) = w.with_webview(|webview| {
        use webkit2gtk::{SettingsExt, WebViewExt};
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(webkit2gtk::HardwareAccelerationPolicy::Never);
        }
    }) {
        tracing::warn!(error = %e, "webview settings not applied");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = w;
}

/// Keeps the log writer flushing until the app exits.
struct LogGuard(#[allow(dead_code)] std::sync::Mutex<Option<countersign_host::logging::Guard>>);
