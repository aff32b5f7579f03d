//! The live inbox: the workspace's sources synced in the background while the app runs.
//!
//! The thread that opens the workspace goes on to poll its sources ([`Intake::run`]):
//! each source on its own schedule, every `poll_seconds` while it answers, backing off on
//! errors and waiting out a `429`'s `Retry-After` (`countersign_engine::intake::next_sync`);
//! a *Check now* that reached every source ends the back-off (the agent fixed the token,
//! the platform is back).
//! A sync that recorded new cases or revisions is reported to the UI over the channel the
//! window registered (`watch_inbox`), and a desktop notification says when customers wrote.
//!
//! **Concurrency.** A background sync and a user's click run side by side on the one
//! engine (which is `Sync`; every write goes through the store's single writer thread).
//! Syncs themselves take turns ([`Intake`]'s lock): the poll and *Check now* never read the
//! same cursor at once. A user's *Plan again* racing the plan a sync makes for a new
//! revision is safe by construction: a revision is recorded only as the case's next one
//! (the store refuses another), and plan ids are content hashes (the same plan is recorded
//! once).
//!
//! **Stopping.** [`Intake::stop`] (called when the app exits) wakes the poller at once and
//! no new sync starts; a sync already reading a page ends at the process's exit, which is
//! safe: a page's cases are recorded in one transaction and the cursor moves after them.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use countersign_engine::intake::next_sync;
use countersign_engine::views::SyncReport;
use countersign_engine::{Engine, EngineError};

use tauri::ipc::Channel;
use tauri_plugin_notification::NotificationExt;

use crate::dto::InboxChanged;

/// The window's channel for what background syncs record (`watch_inbox`).
#[derive(Default)]
pub struct Watcher(Mutex<Option<Channel<InboxChanged>>>);

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("registered", &lock(&self.0).is_some()).finish()
    }
}

impl Watcher {
    /// The window's channel; replaces an earlier one (a reloaded page registers again).
    pub fn set(&self, channel: Channel<InboxChanged>) {
        *lock(&self.0) = Some(channel);
    }

    fn send(&self, changed: &InboxChanged) {
        if let Some(ch) = lock(&self.0).as_ref()
            && let Err(e) = ch.send(changed.clone())
        {
            tracing::debug!(error = %e, "the inbox channel is closed");
        }
    }
}

/// Tell the window what a sync recorded, and the person, with a desktop notification,
/// when customers wrote. A notification that cannot be shown (no notification service, as
/// on a bare X server) is logged and changes nothing else.
pub fn announce<R: tauri::Runtime>(app: &tauri::AppHandle<R>, changed: &InboxChanged) {
    use tauri::Manager;
    app.state::<Watcher>().send(changed);
    if let Some(body) = changed.notification() {
        notify(app, "Countersign: new in the inbox", &body);
    }
}

/// A desktop notification; one that cannot be shown is logged and changes nothing else.
pub fn notify<R: tauri::Runtime>(app: &tauri::AppHandle<R>, title: &str, body: &str) {
    match app.notification().builder().title(title).body(body).show() {
        // Handed to the desktop's notification service; the plugin reports no answer.
        Ok(()) => tracing::info!(%body, "notification handed to the desktop"),
        Err(e) => tracing::warn!(error = %e, %body, "the desktop notification could not be shown"),
    }
}

/// Background syncing of the workspace's sources, and the lock every sync takes.
#[derive(Debug, Default)]
pub struct Intake {
    /// Held for the length of a sync: one at a time.
    syncing: Mutex<()>,
    wake_for: Mutex<Wake>,
    wake: Condvar,
    /// Sources whose webhook arrived since the poller last looked.
    pushed: Mutex<Vec<String>>,
    /// Background syncs run so far (whatever they found).
    syncs: std::sync::atomic::AtomicU64,
}

/// Why the poller was woken before a source was due.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Wake {
    stopped: bool,
    /// *Check now* reached every source: the sources answer again, so each one's back-off
    /// is over and it is polled at its interval from now.
    answered: bool,
    /// A source pushed (a signed webhook): it is synced now.
    pushed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a sync must not stop the others: the guarded data is `()` or a flag.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InboxChanged {
    /// What the syncs in `reports` recorded.
    pub fn of(reports: &[SyncReport]) -> InboxChanged {
        reports.iter().fold(InboxChanged::default(), |c, r| InboxChanged {
            new_cases: c.new_cases + r.new_cases,
            updated: c.updated + r.updated,
            customer_wrote: c.customer_wrote + r.customer_wrote,
            replanned: c.replanned + r.replanned,
        })
    }

    /// Whether the inbox has anything new to show.
    pub fn any(&self) -> bool {
        self.new_cases + self.updated > 0
    }

    /// What a desktop notification says: only when customers wrote (a new conversation,
    /// or a new message in one); an agent's reply read back or a state change is quiet.
    pub fn notification(&self) -> Option<String> {
        let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match (self.new_cases, self.customer_wrote) {
            (0, 0) => None,
            (n, 0) => Some(plural(n, "new conversation", "new conversations")),
            (0, m) => Some(plural(m, "new customer message", "new customer messages")),
            (n, m) => Some(format!(
                "{} and {}",
                plural(n, "new conversation", "new conversations"),
                plural(m, "new customer message", "new customer messages")
            )),
        }
    }
}

impl Intake {
    /// Sync every source now (*Check now*), after any sync under way.
    pub fn sync_all(&self, engine: &Engine) -> Result<Vec<SyncReport>, EngineError> {
        let reports = {
            let _turn = lock(&self.syncing);
            engine.sync_sources()?
        };
        if reports.len() == engine.sources().len() && reports.iter().all(|r| r.error.is_none()) {
            lock(&self.wake_for).answered = true;
            self.wake.notify_all();
        }
        Ok(reports)
    }

    /// Poll the engine's sources until [`Intake::stop`]; `changed` hears of every sync that
    /// recorded something. Returns at once when the workspace names no source.
    pub fn run(&self, engine: &Engine, changed: &dyn Fn(&InboxChanged)) {
        let sources = engine.sources();
        if sources.is_empty() {
            return;
        }
        tracing::info!(sources = sources.len(), "syncing sources in the background");
        // Per source: when it is due, and how many syncs in a row failed.
        let mut due: Vec<(Instant, u32)> = vec![(Instant::now(), 0); sources.len()];
        loop {
            let next = due.iter().map(|d| d.0).min().unwrap_or_else(Instant::now);
            match self.wait_until(next) {
                Wake { stopped: true, .. } => return,
                Wake { answered: true, .. } => {
                    for (source, (at, failures)) in sources.iter().zip(due.iter_mut()) {
                        *failures = 0;
                        *at = Instant::now() + next_sync(source, None, 0);
                    }
                    continue;
                }
                Wake { pushed: true, .. } => {
                    let pushed = std::mem::take(&mut *lock(&self.pushed));
                    for (source, (at, _)) in sources.iter().zip(due.iter_mut()) {
                        if pushed.contains(&source.settings.name) {
                            *at = Instant::now();
                        }
                    }
                }
                _ => {}
            }
            for (source, (at, failures)) in sources.iter().zip(due.iter_mut()) {
                if *at > Instant::now() {
                    continue;
                }
                let result = {
                    let _turn = lock(&self.syncing);
                    if lock(&self.wake_for).stopped {
                        return;
                    }
                    self.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    engine.sync_source(source)
                };
                let wait = match &result {
                    Ok(report) => {
                        *failures = 0;
                        let c = InboxChanged::of(std::slice::from_ref(report));
                        if c.any() {
                            tracing::info!(source = %report.source, ?c, "new from the source");
                            changed(&c);
                        }
                        next_sync(source, None, 0)
                    }
                    Err(e) => {
                        *failures = failures.saturating_add(1);
                        let wait = next_sync(source, Some(e), *failures);
                        tracing::warn!(
                            source = %source.settings.name, error = %e, failures = *failures,
                            retry_in_s = wait.as_secs(), "source sync failed"
                        );
                        wait
                    }
                };
                *at = Instant::now() + wait;
            }
        }
    }

    /// Sleep until `at`, or until woken for a reason (which is taken, except a stop).
    fn wait_until(&self, at: Instant) -> Wake {
        let mut wake = lock(&self.wake_for);
        loop {
            if wake.stopped || wake.answered || wake.pushed {
                let stopped = wake.stopped;
                return std::mem::replace(&mut *wake, Wake { stopped, answered: false, pushed: false });
            }
            let left = at.saturating_duration_since(Instant::now());
            if left == Duration::ZERO {
                return Wake::default();
            }
            wake = self.wake.wait_timeout(wake, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// A source pushed (a signed webhook arrived): sync it now.
    pub fn push(&self, source: &str) {
        lock(&self.pushed).push(source.to_owned());
        lock(&self.wake_for).pushed = true;
        self.wake.notify_all();
    }

    /// Stop polling: the poller wakes at once and starts no new sync.
    pub fn stop(&self) {
        lock(&self.wake_for).stopped = true;
        self.wake.notify_all();
    }
}

/// Start the webhook listeners of the engine's sources that push; each signed call runs
/// `on_push(source)`. A listener that cannot start is logged: the source is still polled.
pub fn listen_for_push(
    engine: &Engine,
    on_push: impl Fn(&str) + Send + Sync + 'static,
) -> Vec<countersign_host::push::PushListener> {
    let keyring = std::sync::Arc::new(countersign_engine::credentials::keyring());
    match countersign_host::push::listen(engine.sources(), keyring, std::sync::Arc::new(on_push)) {
        Ok(listeners) => listeners,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks cannot be received; the sources are polled");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::state::{AppState, Locations};
    use countersign_host::DataRoot;
    use std::path::PathBuf;
    use std::sync::mpsc;

    /// The demo workspace on its demo seller center (started on loopback, as the app does),
    /// whose buyer messages are the workspace's source.
    fn demo(dir: &std::path::Path) -> AppState {
        AppState::build(&Locations {
            assets: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"),
            workspace: None,
            root: DataRoot::named(dir.join("data")),
            log_dir: dir.join("logs"),
            live_demo: true,
        })
        .unwrap()
    }

    fn received(state: &AppState) -> u32 {
        let items = state.engine.inbox().unwrap();
        u32::try_from(items.iter().filter(|i| i.case_id.starts_with("demo-messages:")).count()).unwrap()
    }

    #[test]
    fn the_poller_reports_what_arrives_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let state = demo(dir.path());
        let intake = Intake::default();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let poller = s.spawn(|| intake.run(&state.engine, &|c| tx.send(c.clone()).unwrap()));
            let first = rx.recv_timeout(Duration::from_secs(60)).expect("the first sync reports the conversations");
            assert!(first.new_cases >= 20, "the seeded conversations arrive: {first:?}");
            assert_eq!(first.new_cases, received(&state), "each is one case in the inbox");
            assert_eq!(first.notification().unwrap(), format!("{} new conversations", first.new_cases));
            // Stopping wakes the poller from its wait (the demo source polls every 10 s).
            let asked = Instant::now();
            intake.stop();
            poller.join().unwrap();
            assert!(asked.elapsed() < Duration::from_secs(5), "stopped in {:?}", asked.elapsed());
        });
        assert!(rx.try_recv().is_err(), "nothing else was new");
    }

    #[test]
    fn check_now_racing_the_poller_records_each_conversation_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = demo(dir.path());
        let intake = Intake::default();
        let heard = Mutex::new(Vec::new());
        let checked = std::thread::scope(|s| {
            let poller = s.spawn(|| intake.run(&state.engine, &|c| lock(&heard).push(c.clone())));
            let checks: Vec<_> = (0..3).map(|_| s.spawn(|| intake.sync_all(&state.engine))).collect();
            let checked: Vec<SyncReport> = checks
                .into_iter()
                .flat_map(|c| c.join().unwrap().expect("no sync fails on another's revision or cursor"))
                .collect();
            intake.stop();
            poller.join().unwrap();
            checked
        });
        let polled = InboxChanged::of(&[]);
        let polled = lock(&heard).iter().fold(polled, |a, c| InboxChanged {
            new_cases: a.new_cases + c.new_cases,
            updated: a.updated + c.updated,
            ..a
        });
        let total = InboxChanged::of(&checked).new_cases + polled.new_cases;
        assert!(total >= 20, "the seeded conversations arrived: {checked:?} {polled:?}");
        assert_eq!(total, received(&state), "each conversation arrived once, by whichever sync read it first");
        assert_eq!(InboxChanged::of(&checked).updated + polled.updated, 0, "and none twice");
        assert!(state.engine.verify().unwrap().ok(), "the evidence chain is intact");
    }

    #[test]
    fn a_push_syncs_its_source_at_once_not_at_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let state = demo(dir.path());
        let intake = Intake::default();
        let (tx, rx) = mpsc::channel();
        let syncs = || intake.syncs.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::scope(|s| {
            let poller = s.spawn(|| intake.run(&state.engine, &|c| tx.send(c.clone()).unwrap()));
            rx.recv_timeout(Duration::from_secs(60)).expect("the first sync");
            let before = syncs();
            // The demo source polls every 10 s: a sync within 5 s of the push is the push's.
            let pushed = Instant::now();
            intake.push("demo-messages");
            while syncs() == before && pushed.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let took = pushed.elapsed();
            intake.stop();
            poller.join().unwrap();
            assert!(syncs() > before && took < Duration::from_secs(5), "synced {took:?} after the push");
        });
    }

    #[test]
    fn customers_writing_is_what_a_notification_says() {
        let c = |new_cases, updated, customer_wrote| InboxChanged { new_cases, updated, customer_wrote, replanned: 0 };
        assert_eq!(c(0, 0, 0).notification(), None);
        assert!(!c(0, 0, 0).any());
        assert_eq!(c(0, 1, 0).notification(), None, "our own reply read back is no news to the agent");
        assert!(c(0, 1, 0).any(), "but the inbox shows the case's latest revision");
        assert_eq!(c(1, 0, 0).notification().as_deref(), Some("1 new conversation"));
        assert_eq!(c(0, 2, 2).notification().as_deref(), Some("2 new customer messages"));
        assert_eq!(c(3, 1, 1).notification().as_deref(), Some("3 new conversations and 1 new customer message"));
    }

    #[test]
    fn reports_add_up() {
        let r = |new_cases, updated, customer_wrote, replanned| SyncReport {
            new_cases,
            updated,
            customer_wrote,
            replanned,
            ..SyncReport::default()
        };
        let c = InboxChanged::of(&[r(1, 2, 1, 1), r(3, 0, 0, 0)]);
        assert_eq!(c, InboxChanged { new_cases: 4, updated: 2, customer_wrote: 1, replanned: 1 });
    }
}
