//! The Lua script that reads entries and re-arms sliding windows in one round trip.
//! Independent of the Redis client.

/// The envelope fields the script reads.
///
/// These mirror `memstache_core::envelope` (fixed offsets, little-endian): bytes 0..3 are the
/// magic `b"MSC"`, 16..24 the absolute deadline in ms since the epoch (0 = none), 24..32 the
/// sliding window in ms (0 = none). Kept in this one place until core exports them.
pub(crate) mod envelope {
    /// The envelope magic.
    pub(crate) const MAGIC: &[u8; 3] = b"MSC";
    /// Offset of the absolute deadline (u64 LE, ms since the epoch, 0 = none).
    pub(crate) const DEADLINE_OFFSET: usize = 16;
    /// Offset of the sliding window (u64 LE, ms, 0 = none).
    pub(crate) const SLIDING_OFFSET: usize = 24;
}

/// `KEYS` = the keys (one slot on a cluster); `ARGV[1]` = `"g"` to return the values or `"t"`
/// to return `"1"` per live key (touch). Returns one element per key, `false` (nil) for a miss.
///
/// For an envelope with a sliding window it computes `ttl = min(sliding, deadline - now)` with
/// the server's `TIME`, and `PEXPIRE`s the key (or deletes it when `ttl <= 0`, reporting a
/// miss). Values that are not envelopes, or have no sliding window, are returned untouched.
pub(crate) fn sliding_script() -> String {
    use envelope::{DEADLINE_OFFSET, MAGIC, SLIDING_OFFSET};
    let magic = std::str::from_utf8(MAGIC).unwrap_or("MSC");
    format!(
        r#"local touch = ARGV[1] == 't'
local now = nil
local out = {{}}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.len(v) >= {min_len} and string.sub(v, 1, 3) == '{magic}' then
    local sliding = struct.unpack('<I8', v, {sliding_pos})
    if sliding > 0 then
      if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      local ttl = sliding
      local deadline = struct.unpack('<I8', v, {deadline_pos})
      if deadline > 0 and deadline - now < ttl then ttl = deadline - now end
      if ttl <= 0 then
        redis.call('DEL', key)
        v = false
      else
        redis.call('PEXPIRE', key, ttl)
      end
    end
  end
  if v and touch then v = '1' end
  out[i] = v
end
return out
"#,
        min_len = SLIDING_OFFSET + 8,
        sliding_pos = SLIDING_OFFSET + 1,
        deadline_pos = DEADLINE_OFFSET + 1,
    )
}

/// Reads the sliding window of an envelope, if it has one (used on the client side to know
/// whether a value needs the script).
pub(crate) fn sliding_ms(value: &[u8]) -> Option<u64> {
    use envelope::{MAGIC, SLIDING_OFFSET};
    if value.get(..3)? != MAGIC {
        return None;
    }
    let raw: [u8; 8] = value.get(SLIDING_OFFSET..SLIDING_OFFSET + 8)?.try_into().ok()?;
    let ms = u64::from_le_bytes(raw);
    (ms > 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_reads_the_documented_offsets() {
        let s = sliding_script();
        assert!(s.contains("struct.unpack('<I8', v, 25)"));
        assert!(s.contains("struct.unpack('<I8', v, 17)"));
        assert!(s.contains("string.len(v) >= 32"));
    }

    #[test]
    fn sliding_ms_reads_the_header() {
        let mut v = vec![0u8; 40];
        v[..3].copy_from_slice(b"MSC");
        assert_eq!(sliding_ms(&v), None);
        v[24..32].copy_from_slice(&5_000u64.to_le_bytes());
        assert_eq!(sliding_ms(&v), Some(5_000));
        assert_eq!(sliding_ms(&v[..30]), None);
        v[0] = b'X';
        assert_eq!(sliding_ms(&v), None);
    }
}
