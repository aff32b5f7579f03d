//! Fake platforms on loopback: what their handlers share.

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
