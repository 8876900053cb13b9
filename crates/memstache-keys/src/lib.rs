#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod cached;
mod error;
mod keyring;
mod local;

pub use crate::cached::CachedKeyManager;
pub use crate::local::LocalKeyManager;
