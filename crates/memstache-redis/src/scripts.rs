//! The Lua script that reads entries and re-arms sliding windows in one round trip.
//! Independent of the Redis client.

/// The envelope fields the script reads (fixed offsets, little-endian; see
/// `docs/wire-format.md`): magic and format version, the absolute deadline (ms since the
/// epoch, 0 = none) and the sliding window (ms, 0 = none).
use memstache_core::envelope::{DEADLINE_OFFSET, FORMAT_VERSION, MAGIC, SLIDING_OFFSET};

/// Compare-and-delete: `KEYS[1]` is deleted only when it holds exactly `ARGV[1]` (a lock's
/// token). Returns the number of keys deleted (0 or 1).
pub(crate) const DEL_IF_EQUALS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// What a read script returns in place of a value longer than the backend's bound: the
/// integer `-1` (a value is a bulk string, a miss nil), so an oversized entry is never sent.
pub(crate) const TOO_LARGE: i64 = -1;

/// Guarded write: the entries `KEYS[2..]` are written only when the guard `KEYS[1]` holds
/// exactly `ARGV[1]`. Entry `i` (from 2) takes its value from `ARGV[2i-2]` and its expiry from
/// `ARGV[2i-1]`: milliseconds for `PX`, empty for none, `-` for an entry already due (the key
/// is deleted). Returns an empty array when it wrote, `{0, guard}` (the guard's value, or nil)
/// when it did not — `{0, TOO_LARGE}` when the guard is longer than `max` bytes (checked
/// with `STRLEN`, so it is never sent).
pub(crate) fn set_if_guard_script(max: usize) -> String {
    format!(
        r#"if redis.call('STRLEN', KEYS[1]) > {max} then return {{0, {too_large}}} end
local g = redis.call('GET', KEYS[1])
if g ~= ARGV[1] then return {{0, g}} end
for i = 2, #KEYS do
  local v, px = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if px == '-' then redis.call('DEL', KEYS[i])
  elseif px == '' then redis.call('SET', KEYS[i], v)
  else redis.call('SET', KEYS[i], v, 'PX', px) end
end
return {{}}
"#,
        too_large = TOO_LARGE,
    )
}

/// Sliding windows at or above this (about 317 years) are not re-armed: the TTL set on write
/// stands. It keeps every number the script handles exact in Lua's doubles and inside
/// `PEXPIRE`'s range, whatever bytes a corrupted header holds (the pipeline then rejects the
/// entry by its checksum).
pub(crate) const MAX_SLIDING_MS: u64 = 10_000_000_000_000;

/// `KEYS` = the keys (one slot on a cluster); `ARGV[1]` = the mode: `"g"` returns the values
/// and re-arms sliding ones, `"p"` returns the values and re-arms nothing (a bounded plain
/// read), `"t"` returns `"1"` per live key and re-arms (touch). Returns one element per key:
/// `false` (nil) for a miss, and
/// [`TOO_LARGE`] instead of a value longer than `max` bytes — the length is checked with
/// `STRLEN` before anything is read, so an oversized value is never sent.
///
/// For an envelope with a sliding window it computes `ttl = min(sliding, deadline - now)` with
/// the server's `TIME`, and `PEXPIRE`s the key (or deletes it when `ttl <= 0`, reporting a
/// miss). The header comes from the value, or from `GETRANGE` of its first bytes when the value
/// is not read (touch, oversized). Values that are not envelopes of this format version, or
/// have no sliding window, are returned untouched. The TTL is passed as an integer string
/// (`%.0f`): Lua 5.1 would print large numbers in exponent form, which `PEXPIRE` rejects.
pub(crate) fn sliding_script(max: usize) -> String {
    let magic = std::str::from_utf8(&MAGIC).unwrap_or("MSC");
    format!(
        r#"local mode = ARGV[1]
local now = nil
local out = {{}}
for i, key in ipairs(KEYS) do
  local n = redis.call('STRLEN', key)
  local v = false
  if n > 0 or redis.call('EXISTS', key) == 1 then
    local live = true
    if mode ~= 't' then
      if n > {max} then v = {too_large} else v = redis.call('GET', key) end
    end
    if mode ~= 'p' and n >= {min_len} then
      local h = v
      if type(h) ~= 'string' then h = redis.call('GETRANGE', key, 0, {header_end}) end
      if string.sub(h, 1, 3) == '{magic}' and string.byte(h, 4) == {version} then
        local sliding = struct.unpack('<I8', h, {sliding_pos})
        if sliding > 0 and sliding < {max_ms} then
          if not now then
            local t = redis.call('TIME')
            now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          end
          local ttl = sliding
          local deadline = struct.unpack('<I8', h, {deadline_pos})
          if deadline > 0 and deadline - now < ttl then ttl = deadline - now end
          if ttl <= 0 then
            redis.call('DEL', key)
            live = false
            v = false
          else
            redis.call('PEXPIRE', key, string.format('%.0f', ttl))
          end
        end
      end
    end
    if mode == 't' and live then v = '1' end
  end
  out[i] = v
end
return out
"#,
        min_len = SLIDING_OFFSET + 8,
        header_end = SLIDING_OFFSET + 7,
        max_ms = MAX_SLIDING_MS,
        too_large = TOO_LARGE,
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
        let s = sliding_script(1000);
        assert!(s.contains("struct.unpack('<I8', h, 25)"));
        assert!(s.contains("struct.unpack('<I8', h, 17)"));
        assert!(s.contains("n >= 32 then"));
        assert!(s.contains("GETRANGE', key, 0, 31)"));
        assert!(s.contains("string.byte(h, 4) == 1 "));
        assert!(s.contains("sliding < 10000000000000 then"));
        assert!(s.contains("if n > 1000 then v = -1 "));
        assert!(
            set_if_guard_script(77)
                .starts_with("if redis.call('STRLEN', KEYS[1]) > 77 then return {0, -1} end")
        );
    }
}
