//! Latency percentiles and the demo's result table.

use std::fmt;
use std::time::Duration;

/// Recorded latencies (nanoseconds); percentiles are exact (nearest rank over all samples).
#[derive(Debug, Clone, Default)]
pub(crate) struct Latencies {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    /// Records one latency.
    pub(crate) fn record(&mut self, d: Duration) {
        self.nanos
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds all of `other`'s samples.
    pub(crate) fn merge(&mut self, mut other: Latencies) {
        self.nanos.append(&mut other.nanos);
        self.sorted = false;
    }

    /// How many samples.
    pub(crate) fn len(&self) -> u64 {
        self.nanos.len() as u64
    }

    /// The `p`-th percentile (0 < p ≤ 100) by nearest rank; `None` without samples.
    pub(crate) fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.nanos.is_empty() {
            return None;
        }
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
        let n = self.nanos.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        Some(Duration::from_nanos(self.nanos[idx]))
    }
}

/// Which read-through call the demo makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    GetOrSet,
    GetOrLoad,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::GetOrSet => "get_or_set",
            Api::GetOrLoad => "get_or_load",
        }
    }
}

/// What the cache's own counters said at the end.
pub(crate) fn stats_rows(s: &memstache::StatsSnapshot) -> String {
    format!(
        "{} loader calls, {} eager refreshes, {} soft / {} hard timeouts, {} background loads ({} failed, {} dropped), {} fail-safe serves",
        s.loader_calls,
        s.eager_refreshes,
        s.soft_timeouts,
        s.hard_timeouts,
        s.background_loads,
        s.background_load_failures,
        s.background_loads_dropped,
        s.fail_safe_hits
    )
}

/// Everything `memstache demo` measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) backend: String,
    pub(crate) api: Api,
    /// The read-through settings, as text.
    pub(crate) policy: String,
    /// The cache's own counters at the end.
    pub(crate) cache_stats: memstache::StatsSnapshot,
    pub(crate) requests: u64,
    pub(crate) keys: u64,
    pub(crate) zipf: f64,
    pub(crate) concurrency: u64,
    pub(crate) source_latency: Duration,
    /// Calls the slow source counted.
    pub(crate) source_calls: u64,
    /// `get_or_set`: requests served without calling the source (includes requests that
    /// waited for a concurrent load of the same key: single-flight). `get_or_load`: requests
    /// that took less than the source's latency.
    pub(crate) hits: Latencies,
    /// `get_or_set`: requests whose own loader ran. `get_or_load`: requests that took the
    /// source's latency or longer (they waited for a load, their own or another caller's).
    pub(crate) misses: Latencies,
    /// Answers that differed from what the source returns for that key (must be 0).
    pub(crate) wrong: u64,
    /// Requests that returned an error.
    pub(crate) errors: u64,
    /// Entries and bytes the backend holds at the end, when it can tell.
    pub(crate) stored: Option<(u64, u64)>,
    pub(crate) wall: Duration,
}

/// A duration for humans: `850 ns`, `12.3 us`, `2.05 ms`, `1.52 s` (ASCII only).
pub(crate) fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

impl Report {
    /// The rows of the table, label and value.
    pub(crate) fn rows(&mut self) -> Vec<(&'static str, String)> {
        let hits = self.hits.len();
        let ratio = if self.requests == 0 {
            0.0
        } else {
            100.0 * hits as f64 / self.requests as f64
        };
        let pct = |l: &mut Latencies, p| l.percentile(p).map_or_else(|| "-".to_owned(), human);
        let throughput = self.requests as f64 / self.wall.as_secs_f64().max(1e-9);
        let mut all = self.hits.clone();
        all.merge(self.misses.clone());
        let waited = self.misses.len();
        let waited_share = if self.requests == 0 {
            0.0
        } else {
            100.0 * waited as f64 / self.requests as f64
        };
        vec![
            ("backend", self.backend.clone()),
            ("api", self.api.name().to_owned()),
            ("read-through", self.policy.clone()),
            (
                "workload",
                format!(
                    "{} keys, zipf s={}, {} workers, source {}",
                    self.keys,
                    self.zipf,
                    self.concurrency,
                    human(self.source_latency)
                ),
            ),
            ("requests", self.requests.to_string()),
            ("hits", hits.to_string()),
            ("hit ratio", format!("{ratio:.2}%")),
            ("source calls", self.source_calls.to_string()),
            (
                "calls saved",
                self.requests.saturating_sub(self.source_calls).to_string(),
            ),
            ("hit latency p50", pct(&mut self.hits, 50.0)),
            ("hit latency p99", pct(&mut self.hits, 99.0)),
            ("miss latency p50", pct(&mut self.misses, 50.0)),
            ("miss latency p99", pct(&mut self.misses, 99.0)),
            (
                "waited for the source",
                format!("{waited} ({waited_share:.3}% of requests)"),
            ),
            ("latency p50", pct(&mut all, 50.0)),
            ("latency p99", pct(&mut all, 99.0)),
            ("latency p99.9", pct(&mut all, 99.9)),
            ("latency max", pct(&mut all, 100.0)),
            ("cache counters", stats_rows(&self.cache_stats)),
            (
                "entries stored",
                self.stored
                    .map_or_else(|| "-".to_owned(), |(e, _)| e.to_string()),
            ),
            (
                "bytes stored",
                self.stored
                    .map_or_else(|| "-".to_owned(), |(_, b)| b.to_string()),
            ),
            ("wrong values", self.wrong.to_string()),
            ("errors", self.errors.to_string()),
            ("wall time", human(self.wall)),
            ("throughput", format!("{throughput:.0} req/s")),
        ]
    }

    /// Whether the run was clean: no errors, no wrong values, and every request accounted for.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors == 0
            && self.wrong == 0
            && self.hits.len() + self.misses.len() == self.requests
            // with get_or_load the source is also called in the background (refreshes)
            && (self.api != Api::GetOrSet || self.misses.len() == self.source_calls)
    }
}

/// Label/value rows as an aligned two-column table.
pub(crate) struct Table(pub(crate) Vec<(&'static str, String)>);

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.0.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &self.0 {
            writeln!(f, "  {label:<width$}  {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(l.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(l.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(l.percentile(0.1), Some(Duration::from_millis(1)));
        let mut other = Latencies::default();
        other.record(Duration::from_secs(10));
        l.merge(other);
        assert_eq!(l.len(), 101);
        assert_eq!(l.percentile(100.0), Some(Duration::from_secs(10)));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_nanos(850)), "850 ns");
        assert_eq!(human(Duration::from_nanos(12_345)), "12.3 us");
        assert_eq!(human(Duration::from_micros(2_050)), "2.05 ms");
        assert_eq!(human(Duration::from_millis(1_520)), "1.52 s");
    }

    #[test]
    fn table_aligns_values_and_report_counts_add_up() {
        let mut hits = Latencies::default();
        let mut misses = Latencies::default();
        for _ in 0..3 {
            hits.record(Duration::from_micros(5));
        }
        misses.record(Duration::from_millis(2));
        let mut r = Report {
            backend: "memory".into(),
            api: Api::GetOrSet,
            policy: "entries live until evicted".into(),
            cache_stats: memstache::StatsSnapshot::default(),
            requests: 4,
            keys: 2,
            zipf: 1.0,
            concurrency: 1,
            source_latency: Duration::from_millis(2),
            source_calls: 1,
            hits,
            misses,
            wrong: 0,
            errors: 0,
            stored: Some((1, 10)),
            wall: Duration::from_millis(3),
        };
        assert!(r.is_clean());
        let text = Table(r.rows()).to_string();
        // labels padded to the longest one, then two spaces, then the value
        let width = "waited for the source".len();
        let line = |label: &str, value: &str| format!("  {label:<width$}  {value}\n");
        assert!(text.contains(&line("hit ratio", "75.00%")), "{text}");
        assert!(text.contains(&line("calls saved", "3")), "{text}");
        assert!(
            text.contains(&line("miss latency p99", "2.00 ms")),
            "{text}"
        );
        assert!(
            text.contains(&line("waited for the source", "1 (25.000% of requests)")),
            "{text}"
        );
        assert!(text.contains(&line("latency max", "2.00 ms")), "{text}");
        r.wrong = 1;
        assert!(!r.is_clean());
        // get_or_load refreshes call the source without a waiting request
        r.wrong = 0;
        r.source_calls = 2;
        assert!(!r.is_clean());
        r.api = Api::GetOrLoad;
        assert!(r.is_clean());
    }
}
