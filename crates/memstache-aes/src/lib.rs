#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod aes;
mod error;

pub use crate::aes::Aes256Gcm;
