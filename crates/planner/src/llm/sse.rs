//! Server-sent events, read line by line from a blocking body.

use std::io::BufRead;
use std::time::{Duration, Instant};

use crate::PlannerError;

/// One event: its `event:` name (empty when absent) and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Debug)]
pub(crate) struct Sse<R> {
    reader: R,
    provider: String,
    timeout: Duration,
    /// When the whole request must be over: a stream that trickles in slower than the
    /// timeout is cut off like one that stalls.
    deadline: Instant,
    limit: usize,
    read: usize,
}

impl<R: BufRead> Sse<R> {
    pub fn new(reader: R, provider: &str, timeout: Duration, deadline: Instant, limit: usize) -> Sse<R> {
        Sse { reader, provider: provider.to_string(), timeout, deadline, limit, read: 0 }
    }

    /// The next complete event, `None` at the end of the stream. An event cut off by the
    /// end of the stream (no blank line after it) is dropped, as the SSE standard says:
    /// callers then see the stream end without its end marker.
    pub fn next_event(&mut self) -> Result<Option<Event>, PlannerError> {
        let mut event = Event { name: String::new(), data: String::new() };
        let mut any = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self.reader.read_until(b'\n', &mut line).map_err(|e| self.io_error(&e))?;
            if n == 0 {
                return Ok(None);
            }
            if Instant::now() > self.deadline {
                return Err(self.timed_out());
            }
            self.read = self.read.saturating_add(n);
            if self.read > self.limit {
                return Err(PlannerError::Unavailable {
                    provider: self.provider.clone(),
                    message: format!("the answer is longer than {} bytes", self.limit),
                });
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                if any {
                    return Ok(Some(event));
                }
                continue;
            }
            if text.starts_with(':') {
                continue;
            }
            let (field, value) = match text.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (text, ""),
            };
            match field {
                "event" => event.name = value.to_string(),
                "data" => {
                    if any && !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => continue,
            }
            any = true;
        }
    }

    fn io_error(&self, e: &std::io::Error) -> PlannerError {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                .is_some_and(reqwest::Error::is_timeout);
        if timed_out {
            self.timed_out()
        } else {
            PlannerError::Truncated(format!("the connection failed mid-answer: {e}"))
        }
    }

    fn timed_out(&self) -> PlannerError {
        PlannerError::Timeout {
            provider: self.provider.clone(),
            millis: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut sse = Sse::new(text.as_bytes(), "test", Duration::from_secs(60), deadline, 1 << 20);
        let mut out = Vec::new();
        while let Some(e) = sse.next_event().unwrap_or(None) {
            out.push(e);
        }
        out
    }

    #[test]
    fn events_are_split_on_blank_lines_and_comments_skipped() {
        let got = events(": keep-alive\r\n\r\nevent: ping\r\ndata: {}\r\n\r\ndata: a\ndata: b\n\ndata: cut");
        assert_eq!(
            got,
            vec![Event { name: "ping".into(), data: "{}".into() }, Event { name: String::new(), data: "a\nb".into() },],
            "an event without its closing blank line is dropped"
        );
    }

    #[test]
    fn a_stream_past_its_deadline_times_out() {
        let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap_or_else(Instant::now);
        let mut sse = Sse::new("data: {}\n\n".as_bytes(), "test", Duration::from_millis(5), past, 1 << 20);
        assert!(matches!(sse.next_event(), Err(PlannerError::Timeout { millis: 5, .. })));
    }
}
