//! Cache-trace replay: parse the public cache traces (`docs/eviction.md`) and replay an eviction policy
//! over them at a fixed capacity, measuring hit ratio and speed.
//!
//! The traces are redistributed data that the repository does not commit. [`traces_dir`]
//! finds them: `$MEMSTACHE_TRACES` (a directory), or else `../shared/traces` beside the
//! workspace root. [`load`] reads one from there and, when it is missing, fails with an error
//! that says where the traces come from and how to point at them.
//!
//! Formats (see the traces' README):
//!
//! * ARC `.lis` (zstd-compressed `OLTP.lis.zst`): each line `start count _ _` stands for `count`
//!   single-block requests `start, start + 1, …`.
//! * LIRS (gzip `*.trace.gz`): one block id per line; empty lines and `*` lines are skipped;
//!   CRLF line ends are accepted.
//!
//! Replay is cold-start: every request for a block that is not resident is a miss that
//! inserts it (the policy picks victims while the resident set exceeds the capacity); a request
//! for a resident block is a hit. Hit ratio = hits / requests.
//!
//! ```no_run
//! use memstache_harness::traces::{load, replay};
//! use memstache_eviction::Lru;
//!
//! let oltp = load("OLTP.lis.zst")?; // from $MEMSTACHE_TRACES or ../shared/traces
//! let r = replay(&Lru, 1_000, &oltp.requests);
//! println!("{:.2} %", r.hit_ratio_percent());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memstache_core::raw::{EntryMeta, EvictionPolicy};

/// The public traces (`docs/eviction.md`) and the capacities they are measured at.
pub const STANDARD: &[(&str, &[usize])] = &[
    ("OLTP.lis.zst", &[250, 500, 1_000, 2_000]),
    ("gli.trace.gz", &[250, 500, 1_000, 1_500, 2_000]),
    ("loop.trace.gz", &[256, 512, 768, 1_024]),
    ("multi1.trace.gz", &[500, 1_000, 1_500, 2_000]),
    ("2_pools.trace.gz", &[250, 500, 1_000, 2_000]),
];

/// The environment variable naming the directory that holds the traces.
pub const TRACES_VAR: &str = "MEMSTACHE_TRACES";

/// Where the traces come from and how to point at them (part of [`load`]'s errors).
pub const WHERE_TO_GET_THEM: &str = "the public cache traces are not part of the repository: \
     OLTP.lis.zst is in the moka-rs/cache-trace repository (arc/), the LIRS traces \
     (gli, loop, multi1, 2_pools .trace.gz) in ben-manes/caffeine \
     (simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/); \
     put them in one directory and set MEMSTACHE_TRACES to it, or place them in \
     ../shared/traces beside the repository (README.md, \"Cache traces\"). \
     `cargo xtask test` skips the trace tests, and says so, when they are absent";

/// `../shared/traces` beside the workspace root (the traces live outside the repository).
pub fn default_traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("..")
        .join("shared")
        .join("traces")
}

/// The traces directory: `$MEMSTACHE_TRACES` when set and not empty, else
/// [`default_traces_dir`]. Whether the traces are really there is for [`load`] to find out.
pub fn traces_dir() -> PathBuf {
    match std::env::var_os(TRACES_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => default_traces_dir(),
    }
}

/// Loads the trace file `file` (e.g. `"OLTP.lis.zst"`) from [`traces_dir`].
///
/// # Errors
///
/// Those of [`Trace::load`], with the path and, when the file is not there, where to get
/// the traces ([`WHERE_TO_GET_THEM`]) in the message.
pub fn load(file: &str) -> io::Result<Trace> {
    let path = traces_dir().join(file);
    Trace::load(&path).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            format!("; {WHERE_TO_GET_THEM}")
        } else {
            String::new()
        };
        io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}{hint}", path.display()),
        )
    })
}

/// A parsed trace: a sequence of block ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The trace's short name (file name without extensions, e.g. `OLTP`, `gli`).
    pub name: String,
    /// The requested block ids, in order.
    pub requests: Vec<u64>,
}

impl Trace {
    /// Loads a trace, choosing the format from the file name (`.lis`/`.lis.zst` = ARC,
    /// anything else = LIRS; `.zst` and `.gz` are decompressed).
    ///
    /// # Errors
    ///
    /// I/O errors, and `InvalidData` for malformed lines (with the line number).
    pub fn load(path: impl AsRef<Path>) -> io::Result<Trace> {
        let path = path.as_ref();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let name = file_name.split('.').next().unwrap_or_default().to_owned();
        let file = BufReader::new(File::open(path)?);
        let reader: Box<dyn Read> = if file_name.ends_with(".zst") {
            Box::new(zstd::stream::read::Decoder::with_buffer(file)?)
        } else if file_name.ends_with(".gz") {
            Box::new(flate2::bufread::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let reader = BufReader::new(reader);
        let requests = if file_name.contains(".lis") {
            parse_arc(reader)?
        } else {
            parse_lirs(reader)?
        };
        Ok(Trace { name, requests })
    }
}

fn bad(line: usize, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("line {line}: {what}"))
}

/// Parses the ARC `.lis` format (`start count _ _` per line).
///
/// # Errors
///
/// `InvalidData` for a line without two numbers.
pub fn parse_arc(reader: impl BufRead) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        let mut fields = line.split_ascii_whitespace();
        let Some(start) = fields.next() else {
            continue;
        };
        let start: u64 = start.parse().map_err(|_| bad(n + 1, "bad start block"))?;
        let count: u64 = fields
            .next()
            .ok_or_else(|| bad(n + 1, "missing count"))?
            .parse()
            .map_err(|_| bad(n + 1, "bad count"))?;
        for b in 0..count {
            out.push(start.saturating_add(b));
        }
    }
    Ok(out)
}

/// Parses the LIRS format (one id per line, `*` and empty lines skipped, CRLF accepted).
///
/// # Errors
///
/// `InvalidData` for a line that is not a number.
pub fn parse_lirs(reader: impl BufRead) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        let t = line.trim();
        if t.is_empty() || t == "*" {
            continue;
        }
        out.push(t.parse().map_err(|_| bad(n + 1, "bad block id"))?);
    }
    Ok(out)
}

/// The outcome of one replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that found their block resident.
    pub hits: u64,
    /// Wall time of the replay (policy work + the resident-set bookkeeping).
    pub elapsed: Duration,
}

impl Replay {
    /// hits / requests (0 for an empty trace).
    pub fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.hits as f64 / self.requests as f64
        }
    }

    /// The hit ratio in percent.
    pub fn hit_ratio_percent(&self) -> f64 {
        self.hit_ratio() * 100.0
    }

    /// The hit ratio in percent, rounded to two decimals (as published tables show it).
    pub fn hit_ratio_percent_2dp(&self) -> f64 {
        (self.hit_ratio_percent() * 100.0).round() / 100.0
    }

    /// Requests replayed per second of wall time.
    pub fn requests_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 / s
        } else {
            f64::INFINITY
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct BlockHasher(u64);

impl Hasher for BlockHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(n);
    }
}

/// A 64-bit finaliser (splitmix64): the key hash the policies see for a block id.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Replays `requests` through a fresh state of `policy` holding at most `capacity` blocks.
///
/// The entry id is the block id; the key hash is [`mix64`] of it; the insertion time is the
/// request's index (a logical clock); entries have no deadline and weight 1. A policy that
/// returns no victim, or an id that is not resident, while over capacity is not trusted
/// further: the replay stops evicting for that request (so the result shows the damage
/// instead of hanging).
pub fn replay(policy: &dyn EvictionPolicy, capacity: usize, requests: &[u64]) -> Replay {
    replay_observed(policy, capacity, requests, |_| {})
}

/// [`replay`], also returning every victim in the order the policy chose it (for reference
/// models that compare eviction orders, not only hit counts).
pub fn replay_with_victims(
    policy: &dyn EvictionPolicy,
    capacity: usize,
    requests: &[u64],
) -> (Replay, Vec<u64>) {
    let mut victims = Vec::new();
    let r = replay_observed(policy, capacity, requests, |v| victims.push(v));
    (r, victims)
}

fn replay_observed(
    policy: &dyn EvictionPolicy,
    capacity: usize,
    requests: &[u64],
    mut on_victim: impl FnMut(u64),
) -> Replay {
    let start = Instant::now();
    let mut state = policy.new_state(capacity);
    let mut resident: HashSet<u64, BuildHasherDefault<BlockHasher>> =
        HashSet::with_capacity_and_hasher(capacity + 1, BuildHasherDefault::default());
    let mut hits = 0u64;
    for (t, &block) in requests.iter().enumerate() {
        if resident.contains(&block) {
            hits += 1;
            state.record_access(block);
            continue;
        }
        resident.insert(block);
        state.record_insert(block, &EntryMeta::new(mix64(block), 1, None, t as u64));
        while resident.len() > capacity {
            match state.select_victim() {
                Some(victim) if resident.remove(&victim) => on_victim(victim),
                _ => break,
            }
        }
    }
    Replay {
        requests: requests.len() as u64,
        hits,
        elapsed: start.elapsed(),
    }
}

/// Replays `requests` under Belady's optimal offline policy (MIN): on a miss with a full
/// cache, evict the resident block whose next request is farthest in the future (or never).
/// Every missed block is inserted (demand paging, like [`replay`]), which makes this an upper
/// bound for every policy replayed by [`replay`]. O(n log n).
pub fn replay_optimal(capacity: usize, requests: &[u64]) -> Replay {
    use std::collections::{BinaryHeap, HashMap};
    let start = Instant::now();
    // next[i] = index of the next request for the same block, or usize::MAX
    let mut next = vec![usize::MAX; requests.len()];
    let mut last: HashMap<u64, usize, BuildHasherDefault<BlockHasher>> = HashMap::default();
    for (i, &b) in requests.iter().enumerate().rev() {
        if let Some(&j) = last.get(&b) {
            next[i] = j;
        }
        last.insert(b, i);
    }
    // resident block -> its next use; a max-heap of (next use, block) with lazy deletion
    let mut resident: HashMap<u64, usize, BuildHasherDefault<BlockHasher>> = HashMap::default();
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0u64;
    for (i, &b) in requests.iter().enumerate() {
        if resident.contains_key(&b) {
            hits += 1;
        } else if capacity > 0 {
            while resident.len() >= capacity {
                let Some((due, victim)) = heap.pop() else {
                    break;
                };
                if resident.get(&victim) == Some(&due) {
                    resident.remove(&victim);
                }
            }
        } else {
            continue;
        }
        resident.insert(b, next[i]);
        heap.push((next[i], b));
    }
    Replay {
        requests: requests.len() as u64,
        hits,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_trace_says_where_to_get_the_traces() {
        let e = Trace::load("/nonexistent/OLTP.lis.zst").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // `load` wraps exactly this error; check its message through a directory that is
        // certainly empty (the file name cannot exist in it).
        let e = load("no-such-trace-file.lis.zst").unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{msg}");
        assert!(msg.contains("no-such-trace-file.lis.zst"), "{msg}");
        assert!(msg.contains("MEMSTACHE_TRACES"), "{msg}");
        assert!(msg.contains("moka-rs/cache-trace"), "{msg}");
    }

    #[test]
    fn arc_lines_expand_to_runs() {
        let text = "10 3 0 1\n\n20 1 0 2\n";
        assert_eq!(parse_arc(text.as_bytes()).unwrap(), [10, 11, 12, 20]);
        assert!(parse_arc("x 1 0 0\n".as_bytes()).is_err());
        assert!(parse_arc("1\n".as_bytes()).is_err());
    }

    #[test]
    fn lirs_skips_stars_and_blank_lines_and_accepts_crlf() {
        let text = "5\r\n*\r\n\r\n7\n*\n";
        assert_eq!(parse_lirs(text.as_bytes()).unwrap(), [5, 7]);
        assert!(parse_lirs("5x\n".as_bytes()).is_err());
    }

    #[test]
    fn replay_counts_hits_cold_start() {
        let r = replay(&memstache_eviction::Lru, 2, &[1, 2, 1, 3, 2, 1]);
        // 1m 2m 1h 3m(evicts 2) 2m(evicts 1) 1m
        assert_eq!((r.hits, r.requests), (1, 6));
        assert!((r.hit_ratio() - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(replay(&memstache_eviction::Lru, 2, &[]).hit_ratio(), 0.0);
    }

    #[test]
    fn optimal_evicts_the_farthest_next_use() {
        // cap 2: 1m 2m 3m(evict 2: next use of 1 is sooner) 1h 2m(evict 3, never used) 1h
        let r = replay_optimal(2, &[1, 2, 3, 1, 2, 1]);
        assert_eq!(r.hits, 2);
        assert_eq!(replay_optimal(0, &[1, 1]).hits, 0);
        // never below LRU
        let t: Vec<u64> = (0..500u64).map(|i| (i * i + 3 * i) % 37).collect();
        assert!(replay_optimal(8, &t).hits >= replay(&memstache_eviction::Lru, 8, &t).hits);
    }
}
