//! Routing tenant keys to their own partition of the embedded memory backend.

/// The partition a storage key belongs to: its `{namespace}#{<tenant>}` prefix when the key has
/// the tenancy layout (see the [crate docs](crate)), `None` otherwise. Give it to
/// [`MemoryBackendBuilder::partition_by`](memstache_core::memory::MemoryBackendBuilder::partition_by)
/// so that every tenant gets its own bounded partition and its own eviction order.
///
/// ```
/// use memstache_tenancy::{partition_name, partition_of};
/// assert_eq!(partition_of("app#{acme}:0123456789abcdef:user:1"), Some("app#{acme}"));
/// assert_eq!(partition_of("app#{acme}:gen"), Some("app#{acme}"));
/// assert_eq!(partition_of("app:user:1"), None); // the cache's own keys
/// assert_eq!(partition_name("app", "acme"), "app#{acme}");
/// ```
pub fn partition_of(key: &str) -> Option<&str> {
    let b = key.as_bytes();
    let hash = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')))?;
    if hash == 0 || b[hash] != b'#' || b.get(hash + 1) != Some(&b'{') {
        return None;
    }
    let close = hash + 2 + b[hash + 2..].iter().position(|c| *c == b'}')?;
    Some(&key[..=close])
}

/// The name of a tenant's partition, for
/// [`MemoryBackend::partition_len`](memstache_core::memory::MemoryBackend::partition_len):
/// `namespace` and `tenant` as given to `MemStache` and [`TenantManager`](crate::TenantManager).
pub fn partition_name(namespace: &str, tenant: &str) -> String {
    format!("{namespace}#{{{tenant}}}")
}
