//! A master + replica + one Sentinel.

use std::time::Duration;

use super::server::{Launch, RedisServer, wait_until};

/// The service name the Sentinel monitors.
pub const SERVICE_NAME: &str = "mymaster";

/// A Redis master, one replica of it, and one Sentinel monitoring the master as
/// [`SERVICE_NAME`] with quorum 1. Every process is killed when this drops.
///
/// ```no_run
/// use memstache_testkit::redis::RedisSentinelSet;
/// let set = RedisSentinelSet::start();
/// println!("{}", set.url()); // redis-sentinel://127.0.0.1:<sentinel port>?service_name=mymaster
/// ```
#[derive(Debug)]
pub struct RedisSentinelSet {
    master: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
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
        let master = RedisServer::start();
        let mport = master.port().to_string();
        let replica = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &mport]);
        let conf = format!(
            "sentinel monitor {SERVICE_NAME} 127.0.0.1 {mport} 1\n\
             sentinel down-after-milliseconds {SERVICE_NAME} 1000\n\
             sentinel failover-timeout {SERVICE_NAME} 2000\n"
        );
        let sentinel = RedisServer::launch(
            Launch {
                args: vec!["--sentinel".to_owned()],
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
        }
    }

    /// `redis-sentinel://127.0.0.1:<sentinel port>?service_name=mymaster`.
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?service_name={SERVICE_NAME}",
            self.sentinel.port()
        )
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
