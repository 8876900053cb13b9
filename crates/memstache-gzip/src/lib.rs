#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod config;
mod error;
mod gzip;

pub use config::GzipConfig;
pub use gzip::Gzip;
