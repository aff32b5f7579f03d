//! A loopback HTTP server that replays recorded provider answers, one per connection,
//! and records every request it received. Shared by the planner's and the engine's tests
//! (each uses part of it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 text/event-stream` with this recorded stream, then the connection closes.
    Sse(String),
    /// Any status with a JSON body and extra headers.
    Status { status: u16, headers: Vec<(String, String)>, body: String },
    /// Read the request, then say nothing for this long.
    Stall(Duration),
}

impl Reply {
    /// A recorded stream from `crates/planner/tests/fixtures/`.
    pub fn fixture(name: &str) -> Reply {
        let path = fixtures().join(name);
        Reply::Sse(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status { status, headers: Vec::new(), body: body.to_string() }
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../planner/tests/fixtures")
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct Replay {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Replay {
    /// Serve `replies` in order, one per connection; later requests get a 500.
    pub fn start(replies: Vec<Reply>) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut replies = replies.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let reply = replies.next().unwrap_or_else(|| Reply::status(500, r#"{"error":"no more recordings"}"#));
                let seen = Arc::clone(&seen);
                // A stalled answer must not hold up the next connection (a retry).
                std::thread::spawn(move || serve(stream, reply, &seen));
            }
        });
        Replay { url, requests }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, reply: Reply, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    seen.lock().expect("request log").push(Request { method, target, headers, body });
    let mut stream = stream;
    let response = match reply {
        Reply::Sse(text) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n\
             connection: close\r\n\r\n{text}"
        ),
        Reply::Status { status, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} Recorded\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            format!("{head}\r\n{body}")
        }
        Reply::Stall(d) => {
            std::thread::sleep(d);
            return;
        }
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
