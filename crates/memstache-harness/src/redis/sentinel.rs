//! A master + replica + one Sentinel.

use std::sync::Arc;
use std::time::Duration;

use super::server::{Launch, RedisServer, TlsMaterial, wait_until};

/// The service name the Sentinel monitors.
pub const SERVICE_NAME: &str = "mymaster";

/// A Redis master, one replica of it, and one Sentinel monitoring the master as
/// [`SERVICE_NAME`] with quorum 1. Every process is killed when this drops.
///
/// ```no_run
/// use memstache_harness::redis::RedisSentinelSet;
/// let set = RedisSentinelSet::start();
/// println!("{}", set.url()); // redis-sentinel://127.0.0.1:<sentinel port>?service_name=mymaster
/// ```
#[derive(Debug)]
pub struct RedisSentinelSet {
    master: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
    /// The certificates of a set started with [`start_tls`](Self::start_tls).
    tls: Option<Arc<TlsMaterial>>,
}

impl RedisSentinelSet {
    /// Starts the three processes; returns once the replica is in sync and the Sentinel
    /// reports the master.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing (the message names the apt package) or the set does
    /// not come up within 30 s.
    pub fn start() -> RedisSentinelSet {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start), but all three processes also serve TLS, with a certificate
    /// for `localhost` and `127.0.0.1` signed by a CA made for this set
    /// ([`tls_ca_pem`](Self::tls_ca_pem)), and talk to each other over TLS
    /// (`tls-replication yes`): the Sentinel monitors the master's TLS port, so it names TLS
    /// ports to its clients, before and after a failover. [`tls_url`](Self::tls_url) names the
    /// Sentinel's TLS port. The plain ports stay open for the harness's own commands.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the certificates cannot be made.
    pub fn start_tls() -> RedisSentinelSet {
        Self::start_with(Some(Arc::new(TlsMaterial::new())))
    }

    fn start_with(tls: Option<Arc<TlsMaterial>>) -> RedisSentinelSet {
        let start = |launch: Launch, label: &str| match &tls {
            None => RedisServer::launch(launch, label),
            Some(m) => RedisServer::launch_tls(launch, Arc::clone(m), false, label),
        };
        let replication: &[&str] = if tls.is_some() {
            &["--tls-replication", "yes"]
        } else {
            &[]
        };
        let master = start(Launch::plain(replication), "redis");
        // replicas and the Sentinel reach the master on the port its clients use
        let mport = match &tls {
            None => master.port(),
            Some(_) => master.tls_port(),
        }
        .to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", &mport];
        args.extend(replication);
        let replica = start(Launch::plain(&args), "redis");
        let conf = format!(
            "sentinel monitor {SERVICE_NAME} 127.0.0.1 {mport} 1\n\
             sentinel down-after-milliseconds {SERVICE_NAME} 1000\n\
             sentinel failover-timeout {SERVICE_NAME} 2000\n"
        );
        let mut sentinel_args = vec!["--sentinel".to_owned()];
        sentinel_args.extend(replication.iter().map(|a| (*a).to_owned()));
        let sentinel = start(
            Launch {
                args: sentinel_args,
                config_file: Some(("sentinel.conf".to_owned(), conf)),
            },
            "sentinel",
        );
        let timeout = Duration::from_secs(30);
        wait_until("the replica to sync", timeout, || {
            replica
                .cmd(&["INFO", "replication"])
                .as_text()
                .is_some_and(|t| t.contains("master_link_status:up"))
        });
        wait_until("the sentinel to know the master", timeout, || {
            let r = sentinel.cmd(&["SENTINEL", "get-master-addr-by-name", SERVICE_NAME]);
            matches!(r, super::resp::Reply::Array(ref a) if a.len() == 2)
        });
        RedisSentinelSet {
            master,
            replica,
            sentinel,
            tls,
        }
    }

    /// `redis-sentinel://127.0.0.1:<sentinel port>?service_name=mymaster`.
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?service_name={SERVICE_NAME}",
            self.sentinel.port()
        )
    }

    /// `rediss-sentinel://127.0.0.1:<sentinel TLS port>?service_name=mymaster`, for a set
    /// started with [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    ///
    /// When the set does not serve TLS.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss-sentinel://127.0.0.1:{}?service_name={SERVICE_NAME}",
            self.sentinel.tls_port()
        )
    }

    /// The CA certificate (PEM) that signed the set's certificates, for a set started with
    /// [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    ///
    /// When the set does not serve TLS.
    pub fn tls_ca_pem(&self) -> &[u8] {
        self.tls.as_ref().expect("started with start_tls").ca_pem()
    }

    /// The master.
    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    /// The replica.
    pub fn replica(&self) -> &RedisServer {
        &self.replica
    }

    /// The Sentinel.
    pub fn sentinel(&self) -> &RedisServer {
        &self.sentinel
    }

    /// The master, mutable (to kill or restart it).
    pub fn master_mut(&mut self) -> &mut RedisServer {
        &mut self.master
    }
}
