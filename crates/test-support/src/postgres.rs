//! A real PostgreSQL (Debian's `postgresql-15`, installed by `scripts/setup.sh`): a
//! throwaway cluster in a temporary folder on a random loopback port, with a password,
//! stopped (and its folder removed) on drop.
//!
//! `initdb` refuses to run as root, and so does `postgres`: as root (CI, these machines)
//! the cluster runs as the unprivileged `postgres` user the package makes (else
//! `nobody`), through `setpriv`, its folder handed to that user. Otherwise it runs as
//! whoever runs the test.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the server's programs are: `$COUNTERSIGN_PG_BIN`, else Debian's postgresql-15.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("COUNTERSIGN_PG_BIN").map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from)
}

/// The user the cluster runs as when the test runs as root: (name, uid, gid).
fn unprivileged_user() -> Option<(String, u32, u32)> {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let find = |name: &str| -> Option<(String, u32, u32)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[0] == name {
                Some((name.to_string(), f[2].parse().ok()?, f[3].parse().ok()?))
            } else {
                None
            }
        })
    };
    Some(find("postgres").or_else(|| find("nobody")).expect("as root, a postgres or nobody user to run the cluster as"))
}

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    child: Option<Child>,
    user: Option<(String, u32, u32)>,
    pub port: u16,
    password: String,
    durable: bool,
    /// Serve TLS with the certificate in the cluster's folder ([`Postgres::start_tls`]).
    tls: bool,
}

impl Postgres {
    /// A fresh cluster (user `countersign`, a random password, database `postgres`),
    /// listening on a free loopback port, ready for connections.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// [`Postgres::start`], with `fsync` on when `durable` (a benchmark's cluster, as a
    /// team would run it).
    pub fn start_with(durable: bool) -> Postgres {
        let dir = tempfile::tempdir().expect("a folder for the cluster");
        let user = unprivileged_user();
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).expect("random");
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password).expect("password file");
        if let Some((_, uid, gid)) = &user {
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(*uid), Some(*gid)).expect("hand the cluster's folder over");
            }
        }
        let data = dir.path().join("data");
        let out = as_user(&user, &bin_dir().join("initdb"))
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "countersign",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap_or_else(|e| {
                panic!("could not run initdb ({e}): run scripts/setup.sh, which installs postgresql-15")
            });
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut server =
            Postgres { dir, child: None, user, port: crate::nats::free_port(), password, durable, tls: false };
        server.restart();
        server
    }

    /// [`Postgres::start`], serving TLS only (`ssl = on`, and `hostssl` the one way in)
    /// with a server certificate for `127.0.0.1` issued by a CA of its own, made with
    /// `openssl`. Returns the CA's certificate file, for `sslrootcert`.
    pub fn start_tls() -> (Postgres, PathBuf) {
        let mut server = Postgres::start();
        server.stop();
        let dir = server.dir.path().to_path_buf();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("could not run openssl ({e}): run scripts/setup.sh"));
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=countersign test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").expect("the certificate's names");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        for f in ["server.key", "server.crt"] {
            let path = dir.join(f);
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("key mode");
            if let Some((_, uid, gid)) = &server.user {
                std::os::unix::fs::chown(&path, Some(*uid), Some(*gid)).expect("hand the key over");
            }
        }
        // Only TLS connections over TCP.
        let hba = server.data().join("pg_hba.conf");
        std::fs::write(&hba, "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
            .expect("pg_hba.conf");
        server.tls = true;
        server.restart();
        (server, dir.join("ca.crt"))
    }

    /// The URL to connect with, password included.
    pub fn url(&self) -> String {
        format!("postgres://countersign:{}@127.0.0.1:{}/postgres", self.password, self.port)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start it (again) on the same port and data, and wait until it takes connections.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("server log");
        if let Some((_, uid, gid)) = &self.user {
            std::os::unix::fs::chown(self.dir.path().join("server.log"), Some(*uid), Some(*gid)).expect("log owner");
        }
        let child = as_user(&self.user, &bin_dir().join("postgres"))
            .current_dir(self.dir.path())
            .arg("-D")
            .arg(self.data())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            // A test's cluster: nothing of it outlives the test, so no fsync.
            .args(if self.durable {
                [].as_slice()
            } else {
                ["-c", "fsync=off", "-c", "full_page_writes=off"].as_slice()
            })
            .args(if self.tls {
                ["-c", "ssl=on", "-c", "ssl_cert_file=../server.crt", "-c", "ssl_key_file=../server.key"].as_slice()
            } else {
                [].as_slice()
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start postgres ({e}): run scripts/setup.sh"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = Command::new(bin_dir().join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "1"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited ({status}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "postgres did not take connections in 20 s: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop it: a fast shutdown (SIGINT), SIGKILL if that takes over 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// `program`, run as `user` when given (through `setpriv`, which execs it: the child is
/// the program itself, so signals reach it).
fn as_user(user: &Option<(String, u32, u32)>, program: &Path) -> Command {
    match user {
        Some((_, uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into()]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
