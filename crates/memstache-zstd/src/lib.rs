#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod error;
mod zstd;

pub use crate::config::ZstdConfig;
pub use crate::zstd::Zstd;
