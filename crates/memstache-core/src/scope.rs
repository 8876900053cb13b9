//! Scopes: where a cache operation acts, for plugins that carve a cache into keyspaces
//! (`memstache-tenancy` is one).
//!
//! A [`Scope`] is a storage-key prefix, the key id entries are sealed under, an optional
//! label for spans and error context, and an optional [`Guard`]: a control key whose value
//! must still be the expected one for the operation to count. A guarded read fetches the guard
//! with the entry in one backend call; when the guard holds something else the operation
//! returns [`Outcome::Stale`] with what it found, and the caller decides (tenancy adopts the new
//! generation and retries).
//!
//! [`MemStache`](crate::MemStache)'s operations on a scope are the `*_in` methods (`get_in`, `set_in`, …); the
//! cache's own operations are the same methods on the cache's root scope. Control keys (a
//! guard's key) are read and written with the `control_*` methods, under the operation
//! timeout, and never have local copies. Reads and writes (`set_in`, `set_many_in`) in a
//! guarded scope check the guard in the same backend call (writes through
//! [`Backend::set_many_guarded`](crate::raw::Backend::set_many_guarded)); `remove_in`,
//! `exists_in` and `refresh_in` do not (a caller that must not act on a stale scope confirms
//! the guard first). Guarded scopes keep no local copies.
//!
//! The plugin owns its key layout: the prefix must keep its keys apart from every other
//! scope's and from the cache's own `{namespace}:` keys. A scope prefix should therefore start
//! with the namespace followed by a character other than `:` (namespaces are
//! `[A-Za-z0-9._-]`).
//!
//! ```
//! use memstache_core::scope::{Outcome, Scope};
//! use memstache_core::{EntryOptions, MemStache};
//! use bytes::Bytes;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
//! let cache = MemStache::builder().namespace("app").build()?;
//! cache.control_set("app#v", Bytes::from_static(b"1"), Default::default()).await?;
//! let v1 = Scope::new("app#v1:", "default").guarded("app#v", b"1");
//! cache.set_in(&v1, "k", &7u32, EntryOptions::default()).await?;
//! assert_eq!(cache.get_in::<u32>(&v1, "k").await?.into_done()?, Some(7));
//!
//! // the guard moved on: the scope is stale, and says what the guard holds now
//! cache.control_set("app#v", Bytes::from_static(b"2"), Default::default()).await?;
//! match cache.get_in::<u32>(&v1, "k").await? {
//!     Outcome::Stale(now) => assert_eq!(now.as_deref(), Some(&b"2"[..])),
//!     Outcome::Done(_) => unreachable!(),
//! }
//! # Ok(()) }
//! ```

use bytes::Bytes;

use crate::{Error, Result};

/// Where an operation acts (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) key_id: &'a str,
    pub(crate) label: Option<&'a Label>,
    pub(crate) guard: Option<Guard<'a>>,
}

impl<'a> Scope<'a> {
    /// Entries at `{prefix}{user key}`, sealed under `key_id` when the cache encrypts.
    pub fn new(prefix: &'a str, key_id: &'a str) -> Self {
        Scope {
            prefix,
            key_id,
            label: None,
            guard: None,
        }
    }

    /// Names the scope in spans and in error context (see [`Label`]).
    #[must_use]
    pub fn labelled(mut self, label: &'a Label) -> Self {
        self.label = Some(label);
        self
    }

    /// Operations count only while the control key `key` holds exactly `expected`.
    #[must_use]
    pub fn guarded(mut self, key: &'a str, expected: &'a [u8]) -> Self {
        self.guard = Some(Guard { key, expected });
        self
    }

    /// The storage-key prefix.
    pub fn prefix(&self) -> &'a str {
        self.prefix
    }

    /// The key id entries are sealed under.
    pub fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The guard, if any.
    pub fn guard(&self) -> Option<Guard<'a>> {
        self.guard
    }
}

/// A scope's name in spans (the `scope` field: the value) and in error context (the name,
/// with the value): for tenancy `tenant = <id>`. Give it only what may appear in logs, never a
/// secret. Kept by the plugin, borrowed by its scopes (a scope stays a few words long).
///
/// ```
/// let l = memstache_core::scope::Label::new("tenant", "acme");
/// assert_eq!((l.name(), l.value()), ("tenant", "acme"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    name: &'static str,
    value: String,
}

impl Label {
    /// A label `name = value`.
    pub fn new(name: &'static str, value: impl Into<String>) -> Self {
        Label {
            name,
            value: value.into(),
        }
    }

    /// The context name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A control key and the value it must hold (see [`Scope::guarded`]).
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    /// The control key.
    pub key: &'a str,
    /// The value it must hold.
    pub expected: &'a [u8],
}

/// The result of an operation in a [`Scope`].
#[derive(Debug)]
#[expect(
    clippy::exhaustive_enums,
    reason = "done or stale is the whole guard protocol; callers match both"
)]
pub enum Outcome<T> {
    /// Done under the scope.
    Done(T),
    /// The guard key holds something else now (`None`: nothing): the scope is stale and the
    /// operation had no effect (a read returned nothing).
    Stale(Option<Bytes>),
}

impl<T> Outcome<T> {
    /// The value of an operation done under the scope.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for [`Outcome::Stale`]: only a
    /// guarded scope can be stale, and its caller must handle it.
    pub fn into_done(self) -> Result<T> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::Stale(_) => Err(Error::internal("unguarded scope reported stale")),
        }
    }
}

/// `try_get`'s policy, for `try_get`s on a [`Scope`]: an error is logged (it carries the key
/// hash, never the key) and read as a miss. (The failed `get` already counted the error.)
///
/// ```
/// let r: memstache_core::Result<Option<u8>> =
///     Err(memstache_core::Error::new(memstache_core::ErrorKind::Timeout, "slow"));
/// assert_eq!(memstache_core::scope::absorb(r), None);
/// ```
pub fn absorb<T>(r: Result<Option<T>>) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "memstache.try_get failed; treated as a miss");
        None
    })
}
