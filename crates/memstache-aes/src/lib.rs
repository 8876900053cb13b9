#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod aes;
mod error;

pub use crate::aes::Aes256Gcm;
