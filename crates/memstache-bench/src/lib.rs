#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod harness;
mod peer;
mod report;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis_rs;

pub use harness::{Bench, Row, Sample, Workload, drive, keep, process_cpu_us, round_order, row};
pub use peer::{
    BackendPeer, DynPeer, KEYS, Keys, MemStachePeer, Op, Peer, bytes_value, fill_all, rows,
    text_value,
};
pub use report::{Group, Latency, LatencyRatio, Measured, Ratio, Report, median};

#[cfg(test)]
mod tests;
