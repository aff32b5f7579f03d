//! The demo store served from a thread of its own (with its own tokio runtime), for
//! callers that are not async themselves: tests of blocking connectors, and apps that
//! start the demo seller center beside them on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::{ApiToken, DemoStore, DemoStoreError, ServeOptions};

/// A running demo store on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundServer {
    /// Open (seeding if new) the store at `db` and serve it on an ephemeral loopback port.
    pub fn start(db: PathBuf, seed_dir: PathBuf, token: ApiToken) -> Result<BackgroundServer, DemoStoreError> {
        BackgroundServer::start_with(db, seed_dir, token, ServeOptions::default())
    }

    /// As [`BackgroundServer::start`], served with `options` (e.g. simulated buyers,
    /// which stop when the server is dropped).
    pub fn start_with(
        db: PathBuf,
        seed_dir: PathBuf,
        token: ApiToken,
        options: ServeOptions,
    ) -> Result<BackgroundServer, DemoStoreError> {
        let (ready, started) = mpsc::channel::<Result<SocketAddr, DemoStoreError>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("countersign-demo-store".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(DemoStoreError::Io(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let serve = async {
                    let store = match &options.cases_dir {
                        Some(cases) => DemoStore::open_with_messages(&db, &seed_dir, Some(cases))?,
                        None => DemoStore::open(&db, &seed_dir)?,
                    };
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                    store.serve_with(listener, token, options)
                };
                match serve.await {
                    Ok(server) => {
                        let _ = ready.send(Ok(server.local_addr()));
                        let _ = stopped.await;
                        if let Err(e) = server.shutdown().await {
                            tracing::warn!(error = %e, "demo store did not shut down cleanly");
                        }
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            });
        })?;
        let addr = started.recv().map_err(|_| DemoStoreError::Server("the demo store thread ended".into()))??;
        Ok(BackgroundServer { addr, stop: Some(stop), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
