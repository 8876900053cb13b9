//! The plugin SPI: the traits that backends, codecs, key managers and eviction policies
//! implement. A plugin depends on `memstache-core` only.
//!
//! Every trait is object-safe (`Arc<dyn …>`), `Send + Sync`, and documents its contract with
//! MUST / SHOULD. The behaviour and conformance suites in `memstache-testkit` check them.

mod backend;
mod backplane;
mod bounded;
mod clock;
mod codec;
mod eviction;
mod keys;
mod service;

pub use backend::{Backend, BackendEntry, Capabilities, Expiry};
pub use backplane::{
    Backplane, BackplaneListener, MAX_BACKPLANE_MESSAGE, MemoryBackplane, Subscription,
};
pub use bounded::bounded_fill;
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{Compressor, Encryptor, Serializer};
pub use eviction::{EntryId, EntryMeta, EvictionPolicy, EvictionState};
pub use keys::{KeyManager, KeyVersion, SecretKey, validate_key_id};
pub use service::{
    BackendFuture, BackendRequest, BackendResponse, BackendService, BoxBackendService,
    ServiceBackend,
};

pub use erased_serde;
