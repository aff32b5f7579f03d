//! Logging for both faces: tracing, filtered by `$COUNTERSIGN_LOG` (default `info` for the
//! app, `warn` for the command line), to stderr and, for the app, to a file in its log
//! folder rotated daily (seven kept).

use std::path::Path;

/// Keeps the log file writer flushing until it is dropped (hold it for the process's life).
pub type Guard = tracing_appender::non_blocking::WorkerGuard;

/// Start logging to stderr, and to a daily file in `log_dir` when one is given. `default`
/// is the filter when `$COUNTERSIGN_LOG` is not set. A second call changes nothing.
pub fn init(log_dir: Option<&Path>, default: &str) -> Option<Guard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("COUNTERSIGN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let appender = log_dir.map(|dir| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("countersign")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
    });
    let (file_layer, guard) = match appender {
        Some(Ok(a)) => {
            let (w, g) = tracing_appender::non_blocking(a);
            (Some(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(w)), Some(g))
        }
        _ => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
    guard
}
