//! Simulated buyers: every so often one more buyer message arrives, as if buyers were
//! writing to the shop. The messages come from a script file (by default
//! `assets/demo/buyer-messages.json`, follow-ups and new openings derived from the sample
//! cases), in its order, starting again at the top after the last one. The same script
//! and interval give the same messages in the same order; each (re)start of the server
//! begins at the top.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::DemoStore;
use crate::error::DemoStoreError;
use crate::ops::conversations::{self, BuyerMessage};

/// Where the default buyer script lives in this source tree.
pub const DEFAULT_BUYER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo/buyer-messages.json");

/// What the simulated buyers write, and how often.
#[derive(Debug, Clone)]
pub struct BuyerSimulation {
    every: Duration,
    messages: Vec<BuyerMessage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default, rename = "_about")]
    _about: Option<String>,
    messages: Vec<BuyerMessage>,
}

impl BuyerSimulation {
    /// Reads the script at `path`: `{"messages": [{"user_id", "order_id"?, "text"}, ...]}`
    /// (the body of `POST /buyer/messages`). One message is written every `every`
    /// (at least a millisecond).
    pub fn load(path: impl AsRef<Path>, every: Duration) -> Result<BuyerSimulation, DemoStoreError> {
        let path = path.as_ref();
        let seed_error = |message: String| DemoStoreError::Seed { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| seed_error(e.to_string()))?;
        let script: Script = serde_json::from_str(&text).map_err(|e| seed_error(e.to_string()))?;
        if script.messages.is_empty() {
            return Err(seed_error("the script has no messages".into()));
        }
        Ok(BuyerSimulation { every: every.max(Duration::from_millis(1)), messages: script.messages })
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// How many messages the script holds (one round).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// A running simulation: stopped by sending on (or dropping) `stop`.
#[derive(Debug)]
pub(crate) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts writing the script's messages into `store`, one each `every`.
pub(crate) fn start(store: DemoStore, simulation: BuyerSimulation) -> Running {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let BuyerSimulation { every, messages } = simulation;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for (n, message) in messages.iter().cycle().enumerate() {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticker.tick() => {}
            }
            let message = message.clone();
            let user = message.user_id.clone();
            match store.write(None, move |conn| conversations::buyer_message(conn, message)).await {
                Ok((reply, _)) if reply.status.is_success() => {
                    tracing::info!(n, %user, "simulated buyer wrote a message");
                }
                Ok((reply, _)) => tracing::warn!(n, %user, body = %reply.body, "simulated buyer message refused"),
                Err(e) => tracing::warn!(n, %user, error = %e, "simulated buyer message failed"),
            }
        }
    });
    Running { stop, task }
}
