#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod cached;
mod error;
mod keyring;
mod local;

pub use crate::cached::CachedKeyManager;
pub use crate::local::LocalKeyManager;
