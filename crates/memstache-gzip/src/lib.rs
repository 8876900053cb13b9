#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod error;
mod gzip;

pub use config::GzipConfig;
pub use gzip::Gzip;
