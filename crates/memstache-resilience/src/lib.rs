#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod breaker;
mod retry;
mod stack;
mod timeout;

pub use breaker::{
    BreakerConfig, BreakerHandle, BreakerState, CircuitBreaker, CircuitBreakerLayer,
    DEFAULT_FAILURE_RATE, DEFAULT_HALF_OPEN_PROBES, DEFAULT_MIN_CALLS, DEFAULT_OPEN_FOR,
    DEFAULT_WINDOW,
};
pub use retry::{
    DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRIES, DEFAULT_MIN_RETRIES_PER_SEC,
    DEFAULT_RETRY_RATIO, Retry, RetryConfig, RetryLayer, is_retryable,
};
pub use stack::{DEFAULT_ATTEMPT_TIMEOUT, Resilience};
pub use timeout::{AttemptTimeout, AttemptTimeoutLayer};

#[cfg(test)]
mod tests;
