//! The Redis process harness: real `redis-server` child processes for integration tests.
//!
//! * [`RedisServer`] — one standalone server on a free loopback port.
//! * [`RedisCluster`] — 3 masters + 3 replicas, `cluster_state:ok` before it returns.
//! * [`RedisSentinelSet`] — master + replica + one Sentinel.
//!
//! Every server runs with `--save '' --appendonly no` in its own temporary directory and is
//! killed by PID when its handle drops — also while a test panics. Because a `static` is never
//! dropped, share a topology within one test function (run several checks in sequence) rather
//! than through a `static`. As a last resort each process gets a tiny watchdog shell that kills
//! it once the test process is gone (SIGKILL, abort), so no Redis outlives its test binary.
//!
//! When `redis-server` is not installed, starting panics with the install command
//! ([`INSTALL_HINT`]); `cargo xtask test` installs it.
//!
//! Tests never touch a Redis someone else started (for example a system service on 6379).

mod cluster;
mod resp;
mod sentinel;
mod server;

pub use cluster::{ClusterNodeInfo, NODE_TIMEOUT_MS, RedisCluster};
pub use resp::{Reply, command};
pub use sentinel::{RedisSentinelSet, SERVICE_NAME};
pub use server::{INSTALL_HINT, RedisServer, TestCertificate, wait_until};
