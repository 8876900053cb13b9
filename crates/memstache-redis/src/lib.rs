#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod backend;
mod client;
mod config;
mod error;
mod fred;
mod hints;
mod scripts;
mod slot;

pub use backend::{MAX_VALUE_SIZE, RedisBackend, maxmemory_policy_for};
pub use config::{ReconnectPolicy, RedisConfig, SlidingReads, Topology};
