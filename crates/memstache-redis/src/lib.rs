#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod backend;
mod backplane;
mod batch;
mod client;
mod config;
mod error;
mod hints;
mod scripts;
mod slot;

pub use backend::{RedisBackend, maxmemory_policy_for};
pub use backplane::{BackplaneStats, RedisBackplane};
pub use batch::CoalesceStats;
pub use config::{
    Coalesce, Durability, ENVELOPE_ALLOWANCE, MAX_VALUE_SIZE, ReconnectPolicy, RedisClient,
    RedisConfig, SlidingReads, Topology,
};

#[cfg(not(any(feature = "fred", feature = "redis-rs")))]
compile_error!("memstache-redis needs a client: enable the `redis-rs` or the `fred` feature");
