//! One `redis-server` child process on a free loopback port.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::resp::{Reply, command_auth};

/// The command that installs the Redis binaries on Debian/Ubuntu.
pub const INSTALL_HINT: &str = "apt-get install -y redis-server redis-tools";

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Panics with the install command when `program` is not on `PATH`.
pub(crate) fn require_binary(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not on PATH: the Redis tests start their own Redis processes. \
         Install it with `{INSTALL_HINT}` (as root), or run `cargo xtask test`, which does it."
    );
}

/// A fresh, empty temporary directory, removed by [`TempDir`]'s `Drop`.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "memstache-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A pseudo-random number (no dependency on `rand`): time, pid and a counter through a hash.
fn pseudo_random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        Instant::now(),
    ))
}

/// A port where both `port` and `port + 10000` (the cluster bus) are free right now.
pub(crate) fn free_port() -> u16 {
    loop {
        let port = 20_000 + u16::try_from(pseudo_random() % 25_000).unwrap_or(0);
        let bus = port + 10_000;
        let ok = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", bus)).is_ok();
        if ok {
            return port;
        }
    }
}

/// A running child process plus a watchdog that kills it if the test process dies without
/// running destructors (SIGKILL, abort).
#[derive(Debug)]
struct Proc {
    child: Child,
    watchdog: Option<Child>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// Starts a shell loop that SIGKILLs `pid` once this test process is gone.
fn spawn_watchdog(pid: u32) -> Option<Child> {
    let script = "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill -9 \"$1\" 2>/dev/null";
    Command::new("sh")
        .args([
            "-c",
            script,
            &std::process::id().to_string(),
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// How one server is launched; kept so it can be restarted on the same port.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// Arguments after `redis-server` and before `--port N` (a config file path goes first).
    pub(crate) args: Vec<String>,
    /// A config file to (re)write into the server's directory before each start, if any.
    pub(crate) config_file: Option<(String, String)>,
}

impl Launch {
    /// The `--requirepass` argument, if any.
    pub(crate) fn password(&self) -> Option<&str> {
        self.args
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.args.get(i + 1))
            .map(String::as_str)
    }

    pub(crate) fn plain(extra: &[&str]) -> Launch {
        let mut args: Vec<String> = ["--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Launch {
            args,
            config_file: None,
        }
    }
}

/// Spawns `redis-server` and waits until *this* process answers on `port`.
/// `Err` when it exited (port taken) or did not come up in time.
fn spawn(launch: &Launch, port: u16, dir: &Path) -> Result<Proc, String> {
    let mut args = Vec::new();
    if let Some((name, content)) = &launch.config_file {
        let path = dir.join(name);
        fs::write(&path, content).map_err(|e| format!("write config: {e}"))?;
        args.push(path.display().to_string());
    }
    args.extend(launch.args.iter().cloned());
    args.extend([
        "--port".to_owned(),
        port.to_string(),
        "--bind".to_owned(),
        "127.0.0.1".to_owned(),
        "--dir".to_owned(),
        dir.display().to_string(),
        "--logfile".to_owned(),
        dir.join("redis.log").display().to_string(),
    ]);
    let child = Command::new("redis-server")
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn redis-server: {e}"))?;
    let watchdog = spawn_watchdog(child.id());
    let mut proc = Proc { child, watchdog };
    let want = format!("process_id:{}", proc.pid());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            proc.kill();
            return Err(format!("redis-server exited early ({status})"));
        }
        if let Ok(reply) = command_auth(port, launch.password(), &["INFO", "server"])
            && reply.as_text().is_some_and(|t| t.contains(&want))
        {
            return Ok(proc);
        }
        if Instant::now() > deadline {
            proc.kill();
            return Err("redis-server did not answer in time".to_owned());
        }
        sleep(Duration::from_millis(10));
    }
}

/// A `redis-server` child process on a free loopback port, killed on drop.
///
/// Started with `--save '' --appendonly no` in its own temporary directory. The process is
/// killed by PID when the value drops (also while a test panics), and a small watchdog shell
/// kills it if the test process itself dies without unwinding.
///
/// ```no_run
/// use memstache_harness::redis::RedisServer;
/// let mut server = RedisServer::start();
/// println!("{}", server.url()); // redis://127.0.0.1:<port>
/// server.kill();
/// server.restart(); // same port, empty data set
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    launch: Launch,
    proc: Option<Proc>,
    dir: TempDir,
    tls: Option<Tls>,
}

/// The TLS side of a server started with [`RedisServer::start_tls`] (or a node of
/// [`RedisCluster::start_tls`](super::RedisCluster::start_tls)).
#[derive(Debug)]
struct Tls {
    port: u16,
    material: Arc<TlsMaterial>,
}

/// A throwaway CA, a server certificate and key it signed (written to files for
/// `redis-server`) and a client certificate it signed; shared by the nodes of a cluster.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    ca_pem: Vec<u8>,
    client: TestCertificate,
    ca_file: String,
    cert_file: String,
    key_file: String,
    /// Holds the files.
    _dir: TempDir,
}

impl TlsMaterial {
    /// Makes the certificates and writes the server's files.
    ///
    /// # Panics
    ///
    /// When the certificates cannot be made or written.
    pub(crate) fn new() -> TlsMaterial {
        let (ca, cert, key, client) =
            test_certificates().unwrap_or_else(|e| panic!("test certificates: {e}"));
        let dir = TempDir::new("redis-tls");
        let file = |name: &str, content: &str| {
            let path = dir.path().join(name);
            fs::write(&path, content).unwrap_or_else(|e| panic!("write {name}: {e}"));
            path.display().to_string()
        };
        TlsMaterial {
            ca_file: file("ca.pem", &ca),
            cert_file: file("server.pem", &cert),
            key_file: file("server.key", &key),
            ca_pem: ca.into_bytes(),
            client,
            _dir: dir,
        }
    }

    /// The CA certificate, PEM.
    pub(crate) fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

/// A certificate and its private key, PEM, signed by a throwaway test CA.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The certificate.
    pub cert_pem: Vec<u8>,
    /// Its private key (test material: made for one server and thrown away with it).
    pub key_pem: Vec<u8>,
}

/// A throwaway CA, a server certificate it signed for `localhost` and `127.0.0.1`, and a
/// client certificate it signed: (CA PEM, server certificate PEM, server key PEM, client).
fn test_certificates() -> Result<(String, String, String, TestCertificate), rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "memstache-harness throwaway CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "memstache-harness redis-server");
    let cert = server.signed_by(&key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "memstache-harness client");
    let client_cert = client.signed_by(&client_key, &issuer)?;
    let client = TestCertificate {
        cert_pem: client_cert.pem().into_bytes(),
        key_pem: client_key.serialize_pem().into_bytes(),
    };
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem(), client))
}

impl RedisServer {
    /// Starts a standalone server.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (the message names the apt package) or no server
    /// could be started.
    pub fn start() -> RedisServer {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments (`&["--maxmemory", "10mb"]`).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        Self::launch(Launch::plain(extra), "redis")
    }

    pub(crate) fn launch(launch: Launch, label: &str) -> RedisServer {
        require_binary("redis-server");
        Self::try_launch(launch, label, 10)
            .unwrap_or_else(|last| panic!("could not start redis-server after 10 attempts: {last}"))
    }

    /// Up to `attempts` starts on fresh free ports; the last error when none came up.
    fn try_launch(launch: Launch, label: &str, attempts: usize) -> Result<RedisServer, String> {
        let mut last = String::new();
        for _ in 0..attempts {
            let port = free_port();
            let dir = TempDir::new(label);
            match spawn(&launch, port, dir.path()) {
                Ok(proc) => {
                    return Ok(RedisServer {
                        port,
                        launch,
                        proc: Some(proc),
                        dir,
                        tls: None,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts a server that also serves TLS on a second loopback port, with a certificate for
    /// `localhost` and `127.0.0.1` signed by a CA made for this server alone (see
    /// [`tls_url`](Self::tls_url) and [`tls_ca_pem`](Self::tls_ca_pem)). Clients are not asked
    /// for certificates. The plain port stays open for [`cmd`](Self::cmd).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the certificates cannot be made.
    pub fn start_tls() -> RedisServer {
        Self::start_tls_with(false)
    }

    /// Like [`start_tls`](Self::start_tls), but TLS clients must present a certificate signed
    /// by the same CA (`tls-auth-clients yes`), such as
    /// [`tls_client_certificate`](Self::tls_client_certificate).
    ///
    /// # Panics
    ///
    /// As [`start_tls`](Self::start_tls).
    pub fn start_mutual_tls() -> RedisServer {
        Self::start_tls_with(true)
    }

    fn start_tls_with(client_auth: bool) -> RedisServer {
        Self::launch_tls(
            Launch::plain(&[]),
            Arc::new(TlsMaterial::new()),
            client_auth,
            "redis",
        )
    }

    /// Launches `base` so that it also serves TLS with `material`'s files (which it also uses
    /// for its own outgoing TLS connections: cluster bus, replication, Sentinel), on a TLS port
    /// picked afresh on each attempt (it is part of the arguments).
    pub(crate) fn launch_tls(
        base: Launch,
        material: Arc<TlsMaterial>,
        client_auth: bool,
        label: &str,
    ) -> RedisServer {
        require_binary("redis-server");
        let mut last = String::new();
        for _ in 0..10 {
            let tls_port = free_port();
            let mut launch = base.clone();
            launch.args.extend(
                [
                    "--tls-port",
                    &tls_port.to_string(),
                    "--tls-cert-file",
                    &material.cert_file,
                    "--tls-key-file",
                    &material.key_file,
                    "--tls-ca-cert-file",
                    &material.ca_file,
                    "--tls-auth-clients",
                    if client_auth { "yes" } else { "no" },
                ]
                .map(str::to_owned),
            );
            match Self::try_launch(launch, label, 1) {
                Ok(mut server) => {
                    server.tls = Some(Tls {
                        port: tls_port,
                        material,
                    });
                    return server;
                }
                Err(e) => last = e,
            }
        }
        panic!("could not start a TLS redis-server after 10 attempts: {last}");
    }

    /// `rediss://127.0.0.1:<tls port>`, for a server started with
    /// [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    ///
    /// When the server does not serve TLS.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port())
    }

    /// The TLS port of a server started with [`start_tls`](Self::start_tls) (or of a node of
    /// [`RedisCluster::start_tls`](super::RedisCluster::start_tls)).
    ///
    /// # Panics
    ///
    /// When the server does not serve TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls.as_ref().expect("started with start_tls").port
    }

    /// The PEM certificate of the CA that signed this server's TLS certificate.
    ///
    /// # Panics
    ///
    /// When the server does not serve TLS.
    pub fn tls_ca_pem(&self) -> &[u8] {
        &self
            .tls
            .as_ref()
            .expect("started with start_tls")
            .material
            .ca_pem
    }

    /// A client certificate and key signed by this server's CA (what
    /// [`start_mutual_tls`](Self::start_mutual_tls) asks clients for).
    ///
    /// # Panics
    ///
    /// When the server does not serve TLS.
    pub fn tls_client_certificate(&self) -> &TestCertificate {
        &self
            .tls
            .as_ref()
            .expect("started with start_tls")
            .material
            .client
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Whether the process is running (started and not stopped or killed).
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// The server's working directory (logs, `nodes.conf`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends one command and returns the reply (a fresh connection per call; authenticated
    /// when the server was started with `--requirepass`).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached: this is a test helper.
    pub fn cmd(&self, args: &[&str]) -> Reply {
        command_auth(self.port, self.launch.password(), args)
            .unwrap_or_else(|e| panic!("redis command to port {} failed: {e}", self.port))
    }

    /// Waits until every replica of this master has acknowledged everything the master has
    /// received so far: its `master_repl_offset` against each `slaveN`'s acked `offset` in
    /// `INFO replication`. Unlike `WAIT`, which only counts the writes of the connection it is
    /// sent on, this covers writes made by any client, such as a backend's. Replicas
    /// acknowledge about once a second.
    ///
    /// # Panics
    ///
    /// When the server has no replica, or they do not catch up within `timeout`.
    pub fn wait_replicated(&self, timeout: Duration) {
        let info = || {
            self.cmd(&["INFO", "replication"])
                .as_text()
                .unwrap_or_default()
        };
        let target: u64 = info()
            .lines()
            .find_map(|l| l.strip_prefix("master_repl_offset:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("the server reports master_repl_offset");
        wait_until(
            "the replicas to acknowledge the master's writes",
            timeout,
            || {
                let offsets: Vec<u64> = info()
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("offset="))
                    .filter_map(|l| {
                        l.split(',')
                            .find_map(|f| f.strip_prefix("offset="))
                            .and_then(|v| v.trim().parse().ok())
                    })
                    .collect();
                !offsets.is_empty() && offsets.iter().all(|o| *o >= target)
            },
        );
    }

    /// Stops the server with SIGTERM (SIGKILL after 10 s). Data is gone (nothing is saved).
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Kills the server with SIGKILL, like a crash.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the server again on the same port with the same arguments (stopping it first if
    /// it runs).
    ///
    /// # Panics
    ///
    /// When the port was taken meanwhile or the server does not come up.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        // The port may be in TIME_WAIT or briefly re-bound by a previous test; retry a little.
        for _ in 0..50 {
            match spawn(&self.launch, self.port, self.dir.path()) {
                Ok(p) => {
                    self.proc = Some(p);
                    return;
                }
                Err(e) => last = e,
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "could not restart redis-server on port {}: {last}",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 50 ms until it returns `true`.
///
/// # Panics
///
/// With `what` in the message when `timeout` passes first.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}
