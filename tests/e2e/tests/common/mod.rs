//! What the WebDriver tests share: waiting for an element, or for its text.
#![allow(dead_code, reason = "each test file uses part of it")]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, Locator};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn css(s: &str) -> Locator<'_> {
    Locator::Css(s)
}

pub async fn wait_for(c: &Client, selector: &str) -> Result<fantoccini::elements::Element> {
    c.wait().at_most(WAIT).for_element(css(selector)).await.with_context(|| format!("waiting for {selector}"))
}

/// Wait until the text of `selector` satisfies `ok`; returns the text.
pub async fn wait_text(c: &Client, selector: &str, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < WAIT {
        if let Ok(e) = c.find(css(selector)).await
            && let Ok(t) = e.text().await
        {
            if ok(&t) {
                return Ok(t);
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{selector} never showed {what}; last text: {last:?}")
}
