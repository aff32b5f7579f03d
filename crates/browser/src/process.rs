//! The Chromium process: started so that it does not outlive the process that started
//! it, and a profile freed at start from a browser that a crashed run left behind.
//!
//! chromiumoxide's own launcher builds its command internally, so nothing can be set up
//! in the child; Countersign starts the browser itself and attaches over the DevTools
//! socket the browser prints.
//!
//! - **Tied to us** (Linux): the browser runs under `setpriv --pdeathsig KILL` (util-linux,
//!   part of every Debian), so the kernel kills it when the thread that started it ends —
//!   a dedicated thread that lives exactly as long as the browser — whether the process
//!   exits, aborts or is SIGKILLed. Without `setpriv` it starts untied (with a warning)
//!   and the next start closes it (below).
//! - **A leftover on the profile** ([`free_profile`]): the profile's `SingletonLock`
//!   (`HOST-PID`) names the browser holding it. A live Chromium on this host started with
//!   exactly this `--user-data-dir` whose starter is gone is ours and left over: it is
//!   closed (SIGTERM, then SIGKILL) before the start. A lock from another host, a process
//!   that is not a Chromium on this profile, or one still held by the live process that
//!   started it is refused, naming the profile and the process, and left alone. A lock
//!   naming a dead process is stale: Chromium takes it over itself.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use countersign_connectors::ConnectorError;

/// The argument that names the process that started a browser (Chromium ignores
/// switches it does not know): a browser on the profile whose parent is still that
/// process is in use, not left over.
pub(crate) const OWNER_FLAG: &str = "countersign-owner";

/// A browser this process started. Dropped while it runs, it is killed.
#[derive(Debug)]
pub(crate) struct BrowserProcess {
    /// `None` once reaped: the pid is signalled only while it is still ours.
    child: Arc<Mutex<Option<Child>>>,
    exited: tokio::sync::watch::Receiver<bool>,
}

impl BrowserProcess {
    /// Starts `exe` with `args` and waits (at most `launch_timeout`) for the DevTools
    /// WebSocket address it prints. An error carries the end of the browser's stderr.
    pub async fn start(
        exe: &Path,
        args: Vec<String>,
        launch_timeout: Duration,
    ) -> Result<(BrowserProcess, String), String> {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (exited_tx, exited) = tokio::sync::watch::channel(false);
        let exe = exe.to_path_buf();
        // The thread that spawns the browser is its parent for the death signal: it lives
        // exactly as long as the browser (it waits for it), never shorter.
        std::thread::Builder::new()
            .name("countersign-chromium".into())
            .spawn(move || {
                let mut command = tied_command(&exe);
                command.args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("{e}")));
                        return;
                    }
                };
                let pid = child.id();
                let stderr = child.stderr.take();
                let child = Arc::new(Mutex::new(Some(child)));
                if started_tx.send(Ok((child.clone(), stderr))).is_err() {
                    // Nobody waits for it any more: end it rather than leave it running.
                    kill(&child);
                }
                wait_exit(pid, &child);
                let _ = exited_tx.send(true);
            })
            .map_err(|e| format!("cannot start a thread for the browser: {e}"))?;
        let (child, stderr) = started_rx.await.map_err(|_| "the browser's thread ended".to_owned())??;
        let process = BrowserProcess { child, exited };
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        if let Some(stderr) = stderr {
            std::thread::Builder::new()
                .name("countersign-chromium-stderr".into())
                .spawn(move || read_stderr(stderr, url_tx))
                .map_err(|e| format!("cannot start a thread for the browser: {e}"))?;
        }
        // Dropped on an error, the process is killed.
        match tokio::time::timeout(launch_timeout, url_rx).await {
            Ok(Ok(Ok(url))) => Ok((process, url)),
            Ok(Ok(Err(stderr))) => Err(format!("the browser exited before it was ready: {stderr}")),
            Ok(Err(_)) => Err("the browser gave no DevTools address".into()),
            Err(_) => Err(format!("the browser was not ready within {} s", launch_timeout.as_secs())),
        }
    }

    /// Kills the browser now (if it still runs).
    pub fn kill(&self) {
        kill(&self.child);
    }

    /// Waits until the browser has exited.
    pub async fn exited(&mut self) {
        // An error: the thread is gone, and with it the browser.
        let _ = self.exited.wait_for(|gone| *gone).await;
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill(child: &Mutex<Option<Child>>) {
    if let Some(child) = child.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
        let _ = child.kill();
    }
}

/// Waits for the child to exit, then reaps it under the lock, so it is never signalled
/// after its pid was released.
fn wait_exit(pid: u32, child: &Mutex<Option<Child>>) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
        let id = i32::try_from(pid).ok().and_then(Pid::from_raw);
        while let Some(id) = id {
            match waitid(WaitId::Pid(id), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {
                Err(rustix::io::Errno::INTR) => continue,
                _ => break,
            }
        }
    }
    let _ = pid;
    loop {
        let mut slot = child.lock().unwrap_or_else(PoisonError::into_inner);
        let done = !matches!(slot.as_mut().map(Child::try_wait), Some(Ok(None)));
        if done {
            *slot = None;
            return;
        }
        drop(slot);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the browser's stderr: the DevTools address goes to `url` (or, when the stream
/// ends first, the last of what was written); then it keeps reading, so a browser that
/// logs a lot never blocks on a full pipe.
fn read_stderr(stderr: impl Read, url: tokio::sync::oneshot::Sender<Result<String, String>>) {
    let mut reader = BufReader::new(stderr);
    let mut url = Some(url);
    let mut tail = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if url.is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some((_, ws)) = text.rsplit_once("listening on ")
            && ws.starts_with("ws")
            && ws.contains("devtools/browser")
        {
            if let Some(tx) = url.take() {
                let _ = tx.send(Ok(ws.trim().to_owned()));
            }
            continue;
        }
        tail.push_str(&text);
        if tail.len() > 4000 {
            let cut = tail.char_indices().map(|(i, _)| i).find(|i| *i >= tail.len() - 2000).unwrap_or(0);
            tail.drain(..cut);
        }
    }
    if let Some(tx) = url {
        let _ = tx.send(Err(tail.trim().to_owned()));
    }
}

/// The command that starts `exe` tied to the calling thread (see the module docs).
fn tied_command(exe: &Path) -> Command {
    #[cfg(target_os = "linux")]
    {
        match ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().map(Path::new).find(|p| p.is_file()) {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.args(["--pdeathsig", "KILL", "--"]).arg(exe);
                return command;
            }
            None => tracing::warn!(
                "setpriv (util-linux) not found: the browser is not tied to this process and may outlive a crash \
                 (the next start closes it)"
            ),
        }
    }
    Command::new(exe)
}

// ---------------------------------------------------------------- a leftover browser

/// How long a leftover browser gets to close after SIGTERM, then after SIGKILL.
#[cfg(target_os = "linux")]
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Frees the profile at `dir` from a browser a crashed run left on it, before the start
/// (see the module docs). `exe` is the browser about to start (a leftover ran the same
/// one). Whether a leftover was closed.
pub(crate) fn free_profile(dir: &Path, exe: &Path) -> Result<bool, ConnectorError> {
    #[cfg(target_os = "linux")]
    {
        leftover::free_profile(dir, exe)
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No /proc to tell a leftover from another browser: Chromium's own lock decides.
        let _ = (dir, exe);
        Ok(false)
    }
}

#[cfg(target_os = "linux")]
mod leftover {
    use std::path::PathBuf;
    use std::time::Instant;

    use super::*;
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

    /// What holds a profile's lock.
    #[derive(Debug, PartialEq, Eq)]
    enum Holder {
        /// No lock, or one naming a process that is gone: Chromium takes it over.
        Nobody,
        /// A Chromium on this profile whose starter is gone.
        Leftover(u32),
        /// Not ours to close; the reason names the process.
        Other(String),
    }

    pub(super) fn free_profile(dir: &Path, exe: &Path) -> Result<bool, ConnectorError> {
        let refuse = |why: String| ConnectorError::Config {
            detail: format!(
                "the browser profile {} is in use: {why}; it was left alone — close it, then try again",
                dir.display()
            ),
        };
        let stuck = |why: String| ConnectorError::Config {
            detail: format!("the browser profile {} is held by {why}; close it by hand, then try again", dir.display()),
        };
        let pid = match holder(dir, exe) {
            Holder::Nobody => return Ok(false),
            Holder::Other(why) => return Err(refuse(why)),
            Holder::Leftover(pid) => pid,
        };
        let Some(id) = i32::try_from(pid).ok().and_then(Pid::from_raw) else { return Ok(false) };
        // A pidfd names this process and no later one with its pid; checked again once held.
        let Ok(fd) = pidfd_open(id, PidfdFlags::empty()) else { return Ok(false) };
        match holder(dir, exe) {
            Holder::Leftover(again) if again == pid => {}
            Holder::Nobody => return Ok(false),
            Holder::Other(why) => return Err(refuse(why)),
            Holder::Leftover(_) => return Err(refuse("its browser changed while it was being closed".into())),
        }
        tracing::warn!(pid, profile = %dir.display(), "closing the browser a previous run left on the profile");
        for signal in [Signal::TERM, Signal::KILL] {
            if let Err(e) = pidfd_send_signal(&fd, signal) {
                if e == rustix::io::Errno::SRCH {
                    return Ok(true);
                }
                return Err(stuck(format!(
                    "the browser a previous run left (process {pid}), which cannot be closed: {e}"
                )));
            }
            let until = Instant::now() + CLOSE_WAIT;
            while alive(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !alive(pid) {
                return Ok(true);
            }
        }
        Err(stuck(format!("the browser a previous run left (process {pid}), which did not close when told to")))
    }

    fn holder(dir: &Path, exe: &Path) -> Holder {
        let Ok(target) = std::fs::read_link(dir.join("SingletonLock")) else { return Holder::Nobody };
        let target = target.to_string_lossy().into_owned();
        let Some((host, pid)) = target.rsplit_once('-') else {
            return Holder::Other(format!("its lock names no process ({target:?})"));
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return Holder::Other(format!("its lock names no process ({target:?})"));
        };
        let here = rustix::system::uname().nodename().to_string_lossy().into_owned();
        if host != here {
            return Holder::Other(format!("its lock names process {pid} on another computer, {host:?}"));
        }
        let Some((state, ppid)) = stat(pid) else { return Holder::Nobody };
        if matches!(state, 'Z' | 'X') {
            return Holder::Nobody;
        }
        // Chromium rewrites its process title: the command line may come back as one
        // string, its arguments joined by spaces, so it is searched as text.
        let line = cmdline(pid);
        let shown = {
            let short: String = line.chars().take(160).collect();
            if short.len() < line.len() { format!("{short}…") } else { short }
        };
        if !is_browser(pid, &line, exe) || !on_profile(&line, dir) {
            return Holder::Other(format!(
                "its lock is held by process {pid} ({shown:?}), not a Chromium on this profile"
            ));
        }
        let owner = line
            .split_once(&format!(" --{OWNER_FLAG}="))
            .and_then(|(_, rest)| rest.split(' ').next()?.parse::<u32>().ok());
        if owner.is_some_and(|owner| owner == ppid) {
            return Holder::Other(format!(
                "its browser (process {pid}) belongs to process {ppid}, which is still running (another Countersign \
                 window or command, or the sign-in window)"
            ));
        }
        Holder::Leftover(pid)
    }

    /// The state letter and the parent of `pid`, if it exists.
    fn stat(pid: u32) -> Option<(char, u32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        Some((state, ppid))
    }

    fn alive(pid: u32) -> bool {
        stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
    }

    /// The command line, its arguments joined by spaces.
    fn cmdline(pid: u32) -> String {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<_> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect();
        args.join(" ")
    }

    /// A Chromium-family browser's main process (not one of its helpers, `--type=…`): the
    /// program is a Chromium or the configured browser.
    fn is_browser(pid: u32, line: &str, exe: &Path) -> bool {
        let program = std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap_or_else(|_| PathBuf::from(line.split(' ').next().unwrap_or_default()));
        let name = program.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let configured = exe.file_name().map(|n| n.to_string_lossy().to_lowercase());
        (name.contains("chrom") || configured.as_deref() == Some(name.as_str())) && !line.contains(" --type=")
    }

    /// Started with exactly this profile folder (as given, or its canonical path).
    fn on_profile(line: &str, dir: &Path) -> bool {
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        [dir, canonical.as_path()].iter().any(|d| {
            let flag = format!(" --user-data-dir={}", d.display());
            line.match_indices(&flag).any(|(at, _)| matches!(line[at + flag.len()..].chars().next(), None | Some(' ')))
        })
    }
}
