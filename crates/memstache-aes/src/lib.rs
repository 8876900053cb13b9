#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod aes;
mod cached;
mod error;
mod keyring;
mod local;

pub use crate::aes::Aes256Gcm;
pub use crate::cached::CachedKeyManager;
pub use crate::local::LocalKeyManager;
