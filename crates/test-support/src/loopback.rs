//! Fake platforms and proxies on loopback: reading a request, holding a reply's answer
//! ([`HoldingProxy`]), and playing network faults on writes ([`FaultProxy`]).

use std::io::Read;

/// Reads one HTTP/1.1 request: its head (request line and headers, up to the blank line)
/// and its body (as many bytes as `Content-Length` says, fewer if the peer stops early).
/// `None` when the peer closes or fails before the head is complete.
pub fn read_request(stream: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf.split_off(head_end);
    Some((head, body))
}

/// A loopback proxy in front of a platform (e.g. the demo seller center). It lets every
/// request through, except the first reply post (`POST /conversations/{id}/messages`):
/// that one reaches the platform, but its answer is held back, [`HoldingProxy::posted`]
/// hears of it (a test kills the sender there), and once [`HoldingProxy::release`] is
/// sent the connection is dropped unanswered: the post landed, its answer is lost.
#[derive(Debug)]
pub struct HoldingProxy {
    pub url: String,
    pub posted: std::sync::mpsc::Receiver<()>,
    pub release: std::sync::mpsc::Sender<()>,
}

fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut platform = std::net::TcpStream::connect(upstream).ok()?;
    platform.write_all(head.as_bytes()).ok()?;
    platform.write_all(body).ok()?;
    let (answer_head, answer_body) = read_request(&mut platform)?;
    Some([answer_head.into_bytes(), answer_body].concat())
}

impl HoldingProxy {
    /// A proxy to `platform_url` (`http://127.0.0.1:PORT`) on a loopback port of its own.
    pub fn start(platform_url: &str) -> HoldingProxy {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex, mpsc};
        let upstream = platform_url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let (posted_tx, posted) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let intercepted = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let (upstream, posted_tx, released, intercepted) =
                    (upstream.clone(), posted_tx.clone(), released.clone(), intercepted.clone());
                std::thread::spawn(move || {
                    while let Some((head, body)) = read_request(&mut client) {
                        let reply_post = head.starts_with("POST /conversations/") && head.contains("/messages ");
                        let Some(answer) = forward(&upstream, &head, &body) else { return };
                        if reply_post && !intercepted.swap(true, Ordering::SeqCst) {
                            let _ = posted_tx.send(());
                            let held = released.lock().map(|r| r.recv_timeout(std::time::Duration::from_secs(60)));
                            drop(held);
                            return; // the answer is lost with the connection
                        }
                        if client.write_all(&answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HoldingProxy { url, posted, release }
    }
}

/// What a [`FaultProxy`] does to one write (a `POST`) on its way to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Held this long before it is forwarded (a slow network), then answered as usual.
    /// Held past the client's timeout, the write lands after the client gave up on it.
    DelayRequest(std::time::Duration),
    /// The connection closed once the request was read, before anything was forwarded:
    /// nothing reached the platform, and the client cannot tell.
    DropRequest,
    /// Forwarded (the write lands), then the connection reset (RST) before the answer.
    ResetAfterForward,
    /// Forwarded (the write lands), its answer held this long (past the client's timeout),
    /// then passed on if the client still listens.
    DelayAnswer(std::time::Duration),
}

impl Fault {
    /// The mode's name, without its delay.
    pub fn mode(self) -> &'static str {
        match self {
            Fault::DelayRequest(_) => "delay_request",
            Fault::DropRequest => "drop_request",
            Fault::ResetAfterForward => "reset_after_forward",
            Fault::DelayAnswer(_) => "delay_answer",
        }
    }
}

#[derive(Debug, Default)]
struct FaultState {
    /// The faults the next writes meet, in order.
    schedule: std::sync::Mutex<std::collections::VecDeque<Fault>>,
    /// Writes forwarded to the platform (whatever became of their answers).
    forwarded: std::sync::atomic::AtomicUsize,
    /// Requests read from a client and not yet forwarded or dropped.
    held: std::sync::atomic::AtomicUsize,
}

/// A loopback proxy in front of a platform that plays faults on the writes going through
/// it: each `POST` takes the next fault of the schedule ([`FaultProxy::schedule`]), and
/// passes unharmed once the schedule is empty. Reads always pass. One upstream connection
/// per request, so a fault on one request never touches another.
#[derive(Debug)]
pub struct FaultProxy {
    pub url: String,
    state: std::sync::Arc<FaultState>,
}

impl FaultProxy {
    /// A proxy to `platform_url` (`http://127.0.0.1:PORT`) on a loopback port of its own.
    pub fn start(platform_url: &str) -> FaultProxy {
        let upstream = platform_url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let state = std::sync::Arc::new(FaultState::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (upstream, state) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || serve_with_faults(client, &upstream, &state));
            }
        });
        FaultProxy { url, state }
    }

    /// The faults the next writes meet, in order (after any still scheduled); writes
    /// after them pass.
    pub fn schedule(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.schedule.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(faults);
    }

    /// Takes the scheduled faults no write has met (a write that went through needs no
    /// more), so the next schedule starts clean.
    pub fn take_unplayed(&self) -> Vec<Fault> {
        self.state.schedule.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..).collect()
    }

    /// Writes forwarded to the platform since the proxy started.
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (at most `limit`) until no request is held in the proxy: every delayed one
    /// forwarded, every dropped one gone. `false` if one is still held then.
    pub fn quiet(&self, limit: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while self.state.held.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        true
    }
}

/// One client connection of a [`FaultProxy`]: its requests in turn, each forwarded on a
/// connection of its own, a write meeting the next scheduled fault.
fn serve_with_faults(mut client: std::net::TcpStream, upstream: &str, state: &FaultState) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    loop {
        let Some((head, body)) = read_request(&mut client) else { return };
        // Held from here until forwarded or dropped. (A client waits for its answers, so
        // once it has exited, every request it sent has been read.)
        state.held.fetch_add(1, Ordering::SeqCst);
        let held = HeldWrite(&state.held);
        let fault = if head.starts_with("POST ") {
            state.schedule.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front()
        } else {
            None
        };
        match fault {
            Some(Fault::DropRequest) => return,
            Some(Fault::DelayRequest(d)) => std::thread::sleep(d),
            _ => {}
        }
        let answer = forward(upstream, &head, &body);
        if head.starts_with("POST ") {
            state.forwarded.fetch_add(1, Ordering::SeqCst);
        }
        drop(held);
        let Some(answer) = answer else { return };
        match fault {
            Some(Fault::ResetAfterForward) => {
                // SO_LINGER 0: closing sends RST, not FIN; the answer is never sent.
                let _ = socket2::SockRef::from(&client).set_linger(Some(std::time::Duration::ZERO));
                return;
            }
            Some(Fault::DelayAnswer(d)) => std::thread::sleep(d),
            _ => {}
        }
        if client.write_all(&answer).is_err() {
            return;
        }
    }
}

/// A request counted in [`FaultState::held`] until dropped.
struct HeldWrite<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for HeldWrite<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
