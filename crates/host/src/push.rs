//! Webhook listeners for sources that push (`[[sources]] push_listen`, Zendesk): a signed
//! call to `POST /webhooks/{source}` wakes that source's sync through the face's
//! `on_push`; the call's body is never read as content (see
//! `countersign_connectors::source::push`).
//!
//! One listener per address, on a thread of its own with its own runtime; it stops when
//! dropped. The signing secret is read from the OS keyring at each call, never kept.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use countersign_connectors::credentials::{CredentialName, CredentialStore};
use countersign_connectors::source::Source;
use countersign_connectors::source::push::{ZENDESK_SIGNATURE, ZENDESK_TIMESTAMP, verify_zendesk};
use countersign_engine::EngineError;
use tokio::sync::oneshot;

/// What a face does when a source pushed: sync it now.
pub type OnPush = Arc<dyn Fn(&str) + Send + Sync>;

/// A running webhook listener; stops when dropped.
#[derive(Debug)]
pub struct PushListener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PushListener {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PushListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone)]
struct Listening {
    /// Source name → the keyring credential holding its signing secret.
    secrets: Arc<BTreeMap<String, CredentialName>>,
    keyring: Arc<dyn CredentialStore>,
    on_push: OnPush,
}

/// Start a listener for every `push_listen` address among `sources`.
pub fn listen(
    sources: &[Source],
    keyring: Arc<dyn CredentialStore>,
    on_push: OnPush,
) -> Result<Vec<PushListener>, EngineError> {
    let config = |m: String| EngineError::Config { message: m };
    let mut by_addr: BTreeMap<SocketAddr, BTreeMap<String, CredentialName>> = BTreeMap::new();
    for s in sources {
        let (Some(listen), Some(secret)) = (&s.settings.push_listen, &s.settings.push_secret) else { continue };
        let addr: SocketAddr = listen.parse().map_err(|_| config(format!("push_listen {listen:?}")))?;
        let secret = CredentialName::parse(secret).map_err(|e| config(e.to_string()))?;
        by_addr.entry(addr).or_default().insert(s.settings.name.clone(), secret);
    }
    by_addr
        .into_iter()
        .map(|(addr, secrets)| {
            start(addr, Listening { secrets: Arc::new(secrets), keyring: keyring.clone(), on_push: on_push.clone() })
        })
        .collect()
}

fn start(addr: SocketAddr, listening: Listening) -> Result<PushListener, EngineError> {
    let (ready, started) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("countersign-push".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot listen on {addr}: {e}")));
                        return;
                    }
                };
                let _ = ready.send(listener.local_addr().map_err(|e| e.to_string()));
                let app = axum::Router::new().route("/webhooks/{source}", post(webhook)).with_state(listening);
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
                if let Err(e) = serve.await {
                    tracing::warn!(error = %e, "the webhook listener stopped");
                }
            });
        })
        .map_err(|e| EngineError::Config { message: format!("cannot start the webhook listener: {e}") })?;
    let addr = started
        .recv()
        .map_err(|_| EngineError::Config { message: "the webhook listener thread ended".into() })?
        .map_err(|message| EngineError::Config { message })?;
    tracing::info!(%addr, "listening for webhooks");
    Ok(PushListener { addr, stop: Some(stop), thread: Some(thread) })
}

async fn webhook(
    State(l): State<Listening>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(name) = l.secrets.get(&source) else {
        return (StatusCode::NOT_FOUND, format!("no source {source:?} takes webhooks here"));
    };
    let secret = match l.keyring.get(name) {
        Ok(secret) => secret,
        Err(e) => {
            tracing::warn!(%source, error = %e, "the webhook's signing secret cannot be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "the signing secret cannot be read".into());
        }
    };
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    match verify_zendesk(&secret, header(ZENDESK_TIMESTAMP), header(ZENDESK_SIGNATURE), &body, jiff::Timestamp::now()) {
        Ok(()) => {
            tracing::debug!(%source, "webhook: syncing now");
            (l.on_push)(&source);
            (StatusCode::ACCEPTED, "syncing".into())
        }
        Err(refused) => {
            tracing::warn!(%source, %refused, "webhook refused");
            (StatusCode::UNAUTHORIZED, refused.to_string())
        }
    }
}
