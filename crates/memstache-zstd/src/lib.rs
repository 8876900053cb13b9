#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod config;
mod error;
mod zstd;

pub use crate::config::ZstdConfig;
pub use crate::zstd::Zstd;
