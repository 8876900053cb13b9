//! Redis Cluster key slots (CRC16/XMODEM of the key or its `{hash tag}`, modulo 16384) and the
//! grouping of batch keys by slot. Independent of the Redis client.

/// Number of hash slots in a Redis Cluster.
pub(crate) const SLOTS: u16 = 16_384;

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC16: [u16; 256] = crc16_table();

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses it.
pub(crate) fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The part of `key` that is hashed: the content of the first `{…}` when it is non-empty,
/// else the whole key.
pub(crate) fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The cluster slot of `key`.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// Groups the indexes of `keys` by slot, keeping each group in input order. Groups are in
/// order of first appearance, so the result is deterministic.
pub(crate) fn group_by_slot(keys: &[&str]) -> Vec<Vec<usize>> {
    let mut slot_of_group: Vec<u16> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let slot = key_slot(k.as_bytes());
        let g = *index.entry(slot).or_insert_with(|| {
            slot_of_group.push(slot);
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_redis_reference_vector() {
        // From the Redis Cluster specification: CRC16 of "123456789" is 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn known_slots() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}"); // empty first tag: whole key
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"}{x}"), b"x");
    }

    #[test]
    fn grouping_keeps_order_within_groups() {
        let keys = ["{a}1", "b", "{a}2", "c", "{a}3"];
        let groups = group_by_slot(&keys);
        assert_eq!(groups[0], vec![0, 2, 4]);
        let flat: usize = groups.iter().map(Vec::len).sum();
        assert_eq!(flat, keys.len());
    }
}
