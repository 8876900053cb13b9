#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
pub mod redis;
pub mod sweep;
pub mod synthetic;
pub mod traces;
