//! The Lua script that reads entries and re-arms sliding windows in one round trip.
//! Independent of the Redis client.

/// The envelope fields the script reads (fixed offsets, little-endian; see
/// `docs/wire-format.md`): magic and format version, the absolute deadline (ms since the
/// epoch, 0 = none) and the sliding window (ms, 0 = none).
use memstache_core::envelope::{DEADLINE_OFFSET, FORMAT_VERSION, MAGIC, SLIDING_OFFSET};

/// Compare-and-delete: `KEYS[1]` is deleted only when it holds exactly `ARGV[1]` (a lock's
/// token). Returns the number of keys deleted (0 or 1).
pub(crate) const DEL_IF_EQUALS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Guarded write: the entries `KEYS[2..]` are written only when the guard `KEYS[1]` holds
/// exactly `ARGV[1]`. Entry `i` (from 2) takes its value from `ARGV[2i-2]` and its expiry from
/// `ARGV[2i-1]`: milliseconds for `PX`, empty for none, `-` for an entry already due (the key
/// is deleted). Returns an empty array when it wrote, `{0, guard}` (the guard's value, or nil)
/// when it did not.
pub(crate) const SET_IF_GUARD: &str = r#"local g = redis.call('GET', KEYS[1])
if g ~= ARGV[1] then return {0, g} end
for i = 2, #KEYS do
  local v, px = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if px == '-' then redis.call('DEL', KEYS[i])
  elseif px == '' then redis.call('SET', KEYS[i], v)
  else redis.call('SET', KEYS[i], v, 'PX', px) end
end
return {}
"#;

/// Sliding windows at or above this (about 317 years) are not re-armed: the TTL set on write
/// stands. It keeps every number the script handles exact in Lua's doubles and inside
/// `PEXPIRE`'s range, whatever bytes a corrupted header holds (the pipeline then rejects the
/// entry by its checksum).
pub(crate) const MAX_SLIDING_MS: u64 = 10_000_000_000_000;

/// `KEYS` = the keys (one slot on a cluster); `ARGV[1]` = `"g"` to return the values or `"t"`
/// to return `"1"` per live key (touch). Returns one element per key, `false` (nil) for a miss.
///
/// For an envelope with a sliding window it computes `ttl = min(sliding, deadline - now)` with
/// the server's `TIME`, and `PEXPIRE`s the key (or deletes it when `ttl <= 0`, reporting a
/// miss). Values that are not envelopes of this format version, or have no sliding window, are
/// returned untouched. The TTL is passed as an integer string (`%.0f`): Lua 5.1 would print
/// large numbers in exponent form, which `PEXPIRE` rejects.
pub(crate) fn sliding_script() -> String {
    let magic = std::str::from_utf8(&MAGIC).unwrap_or("MSC");
    format!(
        r#"local touch = ARGV[1] == 't'
local now = nil
local out = {{}}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.len(v) >= {min_len} and string.sub(v, 1, 3) == '{magic}'
     and string.byte(v, 4) == {version} then
    local sliding = struct.unpack('<I8', v, {sliding_pos})
    if sliding > 0 and sliding < {max_ms} then
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
        redis.call('PEXPIRE', key, string.format('%.0f', ttl))
      end
    end
  end
  if v and touch then v = '1' end
  out[i] = v
end
return out
"#,
        min_len = SLIDING_OFFSET + 8,
        max_ms = MAX_SLIDING_MS,
        version = FORMAT_VERSION,
        sliding_pos = SLIDING_OFFSET + 1,
        deadline_pos = DEADLINE_OFFSET + 1,
    )
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
        assert!(s.contains("string.byte(v, 4) == 1 "));
        assert!(s.contains("sliding < 10000000000000 then"));
    }
}
