//! `countersign-demo-store`: a seller center on loopback. A real HTTP JSON API over a
//! SQLite file, seeded from the tau-retail data (`assets/demo-store/`), that Countersign
//! talks to exactly as it would talk to a real ecommerce platform.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use countersign_demo_store::{ApiToken, DemoStore, DEFAULT_SEED_DIR};
//! let store = DemoStore::open("demo-store.sqlite3", DEFAULT_SEED_DIR)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = store.serve(listener, ApiToken::new("s3cret")?)?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The endpoints are listed, with an example each, in this crate's `README.md`.
//!
//! Besides orders and customers it has **buyer messages**, as a marketplace's seller
//! center does: conversations seeded once from the sample cases
//! ([`DemoStore::open_with_messages`], [`DEFAULT_CASES_DIR`]), read by a change cursor
//! (`GET /conversations?since=`), answered with replies and internal notes, and written
//! to by buyers (`POST /buyer/messages`), optionally simulated ([`ServeOptions`],
//! [`BuyerSimulation`]).
//!
//! # Architecture invariants
//!
//! - This crate stands for an *outside* system. No Countersign crate reaches into its
//!   database or types; they talk to it over HTTP. The CLI only calls [`DemoStore::open`]
//!   and [`DemoStore::serve`] to run it.
//! - The store's rules live in `rules.rs` as pure functions over the records; `ops.rs`
//!   loads, applies a rule and saves; `api.rs` does HTTP only; `db.rs` is the only
//!   place with SQL.
//! - Money is [`money::Usd`], a decimal read from its exact text; never a float.
//! - A write and its idempotency record commit in one SQLite transaction, through one
//!   writer connection, so a retried write can never apply twice, even across a crash.
//!
//! # Extending
//!
//! A new operation is a rule in `rules.rs` (checks first, then changes), an `ops.rs`
//! function that loads and saves, a route in `api.rs` (writes via `write_handler!`, which
//! brings idempotency for free), a paragraph in the README and tests in `tests/api.rs`.
//! Schema changes are new files in `migrations/`, never edits.

mod api;
mod background;
mod db;
mod error;
mod idempotency;
pub mod model;
pub mod money;
mod ops;
pub mod pages;
mod rules;
mod seed;
mod simulate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, TransactionBehavior};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::background::BackgroundServer;
pub use crate::error::{ApiError, DemoStoreError, ErrorCode};
pub use crate::rules::CANCEL_REASONS;
pub use crate::simulate::{BuyerSimulation, DEFAULT_BUYER_SCRIPT};

use crate::idempotency::Idempotency;
use crate::ops::Reply;

/// Where the seed data lives in this source tree (`assets/demo-store`).
pub const DEFAULT_SEED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo-store");

/// Where the sample cases live in this source tree (`assets/demo/cases`): the buyer
/// conversations are seeded from them.
pub const DEFAULT_CASES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo/cases");

/// How a store is served beyond its listener and token.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Simulated buyers writing messages while the server runs (none by default).
    pub simulate_buyers: Option<BuyerSimulation>,
    /// Where [`BackgroundServer::start_with`] seeds buyer conversations from (see
    /// [`DemoStore::open_with_messages`]); `None`: [`DEFAULT_CASES_DIR`] when it exists.
    pub cases_dir: Option<PathBuf>,
}

/// The bearer token clients must present. Never printed.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Takes the token text (surrounding whitespace, such as a file's final newline, is
    /// dropped). An empty token is refused.
    pub fn new(token: impl Into<String>) -> Result<ApiToken, DemoStoreError> {
        let token = token.into().trim().to_owned();
        if token.is_empty() {
            return Err(DemoStoreError::EmptyToken);
        }
        Ok(ApiToken(token))
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        diff == 0 && a.len() == b.len()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

/// The store: a SQLite file with one writer connection and a pool of readers. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct DemoStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl fmt::Debug for DemoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl DemoStore {
    /// Opens (creating if needed) the store at `db_path`. An empty database is seeded from
    /// the tau-retail files in `seed_dir`; an existing one keeps its state and `seed_dir`
    /// is not read. Buyer conversations are seeded once from [`DEFAULT_CASES_DIR`] when
    /// that folder exists (an installed app without this source tree gets none).
    pub fn open(db_path: impl AsRef<Path>, seed_dir: impl AsRef<Path>) -> Result<DemoStore, DemoStoreError> {
        let cases = Path::new(DEFAULT_CASES_DIR);
        DemoStore::open_with_messages(db_path, seed_dir, cases.is_dir().then_some(cases))
    }

    /// As [`DemoStore::open`], with the buyer conversations seeded from the sample cases
    /// in `cases_dir` (every `*.json` whose platform is `demo_seller_center` and whose
    /// customer is in the seed data). Seeded once per database: a reopen adds nothing,
    /// and `cases_dir` is then not read. `None` seeds no conversations.
    pub fn open_with_messages(
        db_path: impl AsRef<Path>,
        seed_dir: impl AsRef<Path>,
        cases_dir: Option<&Path>,
    ) -> Result<DemoStore, DemoStoreError> {
        let path = db_path.as_ref().to_path_buf();
        let writer = db::open_and_prepare(&path, seed_dir.as_ref(), cases_dir)?;
        Ok(DemoStore { inner: Arc::new(Inner { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) }) })
    }

    /// A backlog of `n` new buyer conversations with one message each (`text`), from the
    /// seeded buyers in turn, written in one transaction: what an inbox that was not read
    /// for a while holds (benchmarks). Returns the conversation ids.
    pub fn add_backlog(&self, n: usize, text: &str) -> Result<Vec<String>, DemoStoreError> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.inner.path.display().to_string();
        let sql = |source| DemoStoreError::Database { path: path.clone(), source };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let ids = db::conversations::backlog(&tx, n, text)
            .map_err(|e| DemoStoreError::Schema { path: path.clone(), message: format!("writing the backlog: {e}") })?;
        tx.commit().map_err(sql)?;
        Ok(ids)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Serves the API on `listener` (bind it to loopback, e.g. `127.0.0.1:0`) until the
    /// returned handle is shut down. Must be called inside a tokio runtime.
    pub fn serve(&self, listener: TcpListener, token: ApiToken) -> Result<ServerHandle, DemoStoreError> {
        self.serve_with(listener, token, ServeOptions::default())
    }

    /// As [`DemoStore::serve`], with options (simulated buyers). The simulation stops
    /// when the server is shut down or its handle dropped.
    pub fn serve_with(
        &self,
        listener: TcpListener,
        token: ApiToken,
        options: ServeOptions,
    ) -> Result<ServerHandle, DemoStoreError> {
        let addr = listener.local_addr()?;
        let app = api::router(self.clone(), token);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // Either an explicit shutdown or the handle being dropped stops us.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, db = %self.inner.path.display(), "demo store listening");
        let simulation = options.simulate_buyers.map(|simulation| {
            tracing::info!(every = ?simulation.every(), messages = simulation.len(), "simulating buyers");
            simulate::start(self.clone(), simulation)
        });
        Ok(ServerHandle { addr, stop: Some(stop), task, simulation })
    }

    /// Runs `f` on a reader connection on the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => db::connect(&inner.path, true)?,
            };
            let result = f(&conn);
            inner.readers.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            result
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Runs a write on the writer connection, in one immediate transaction with its
    /// idempotency record. Returns the reply and whether it is a replay of a stored one.
    /// The API's `Idempotency-Key` and a page form's `form_token` both come here
    /// ([`Idempotency`]): the same key and request answer the stored reply, the same
    /// key with another request is refused (`idempotency_key_reused`).
    ///
    /// A refused write (4xx) changes nothing but is still stored under its key, so a
    /// retry gets the same answer. A server failure (5xx) rolls everything back, key
    /// included, so the client may retry it.
    pub(crate) async fn write<F>(&self, idempotency: Option<Idempotency>, op: F) -> Result<(Reply, bool), ApiError>
    where
        F: FnOnce(&Connection) -> Result<Reply, ApiError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(idem) = &idempotency
                && let Some(stored) = db::idempotency_lookup(&tx, &idem.key)?
            {
                if stored.fingerprint != idem.fingerprint {
                    return Err(idem.reused());
                }
                let status = axum::http::StatusCode::from_u16(stored.status).map_err(ApiError::internal)?;
                return Ok((Reply { status, body: stored.body }, true));
            }
            let reply = {
                let savepoint = tx.savepoint()?;
                match op(&savepoint) {
                    Ok(reply) => {
                        savepoint.commit()?;
                        reply
                    }
                    // Dropping the savepoint rolls back whatever the operation wrote.
                    Err(refused) if refused.code != ErrorCode::Internal => {
                        Reply { status: refused.status(), body: refused.body_text() }
                    }
                    Err(failed) => return Err(failed),
                }
            };
            if let Some(idem) = &idempotency {
                db::idempotency_store(
                    &tx,
                    &idem.key,
                    &db::StoredOutcome {
                        fingerprint: idem.fingerprint.clone(),
                        status: reply.status.as_u16(),
                        body: reply.body.clone(),
                    },
                )?;
            }
            tx.commit()?;
            Ok((reply, false))
        })
        .await
        .map_err(ApiError::internal)?
    }
}

/// A running server: its address and a graceful shutdown.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    simulation: Option<simulate::Running>,
}

impl ServerHandle {
    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish and waits for the
    /// server task to end.
    pub async fn shutdown(mut self) -> Result<(), DemoStoreError> {
        if let Some(simulation) = self.simulation.take() {
            simulation.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Waits for the server to end (after a shutdown, or if it fails).
    pub async fn wait(self) -> Result<(), DemoStoreError> {
        // Keep the stop sender alive while waiting: dropping it would stop the server.
        let ServerHandle { stop, task, simulation, .. } = self;
        let ended = task.await;
        if let Some(simulation) = simulation {
            simulation.stop().await;
        }
        drop(stop);
        match ended {
            Ok(result) => result.map_err(DemoStoreError::from),
            Err(join) => Err(DemoStoreError::Server(join.to_string())),
        }
    }
}
