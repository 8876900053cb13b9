//! Rows, the timed driver and the interleaved rounds.

use std::future::Future;
use std::time::Instant;

use futures::StreamExt as _;
use tokio::runtime::Runtime;

use crate::report::{Group, Latency, LatencyRatio, Measured, Ratio, Report, write_ratios_header};

/// What one timed run of a workload took: wall seconds and the client's CPU time, and, for a
/// run of one call at a time, each call's latency.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU time of this process (user + system) in µs, or `None` where the platform does not
    /// tell it (only Linux's `/proc/self/stat` is read).
    pub cpu_us: Option<f64>,
    /// Nanoseconds of each call, in call order, when the run had one call in flight (a
    /// latency row); empty otherwise (with many in flight a call's time is mostly queueing).
    pub latencies_ns: Vec<u64>,
}

/// CPU time (user + system) of this process in µs: the client side, since a server the bench
/// started is a child process with its own account. `None` where it cannot be read (any
/// platform but Linux, or an unreadable `/proc`): unavailable, never zero.
///
/// Its resolution is the kernel's clock tick (10 ms), so it means something only over runs of
/// a few hundred milliseconds.
///
/// ```
/// let cpu = memstache_bench::process_cpu_us();
/// assert_eq!(cpu.is_some(), cfg!(target_os = "linux"));
/// ```
pub fn process_cpu_us() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_proc_stat_ticks(&stat).map(|ticks| ticks * 10_000)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// utime + stime (fields 14 and 15, in clock ticks of 10 ms) of a `/proc/<pid>/stat` line.
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "read only on Linux")
)]
pub(crate) fn parse_proc_stat_ticks(stat: &str) -> Option<u64> {
    // the command name (field 2) is in parentheses and may hold spaces: count after the last ')'
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_whitespace();
    // after the name, field 3 (the state) comes first: utime is the 12th from here
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Runs `ops` calls of `f` (with the call's index), at most `inflight` at once, on the current
/// task; returns the wall time and the client CPU they took. With one in flight the calls run
/// one after another and each call's latency is recorded too (two clock reads per call, the
/// same for every row).
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let s = rt.block_on(memstache_bench::drive(100, 8, |i| async move {
///     std::hint::black_box(i);
/// }));
/// assert!(s.wall_s >= 0.0);
/// assert!(s.latencies_ns.is_empty());
/// let s = rt.block_on(memstache_bench::drive(100, 1, |i| async move {
///     std::hint::black_box(i);
/// }));
/// assert_eq!(s.latencies_ns.len(), 100);
/// ```
pub async fn drive<F, Fut>(ops: usize, inflight: usize, f: F) -> Sample
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let cpu0 = process_cpu_us();
    let start = Instant::now();
    let mut latencies_ns = Vec::new();
    if inflight <= 1 {
        latencies_ns.reserve_exact(ops);
        for i in 0..ops {
            let t = Instant::now();
            f(i).await;
            latencies_ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    } else {
        futures::stream::iter(0..ops)
            .for_each_concurrent(inflight, &f)
            .await;
    }
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_us = match (cpu0, process_cpu_us()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64),
        _ => None,
    };
    Sample {
        wall_s,
        cpu_us,
        latencies_ns,
    }
}

/// A row's workload: runs `n` calls on the runtime and returns what they took. Boxed once per
/// row, so the dynamic call happens once per run (a few hundred milliseconds), never per
/// operation: every row pays the same harness cost.
pub type Workload<'a> = Box<dyn FnMut(&Runtime, usize) -> Sample + 'a>;

/// One row of a group: a name, what it counts, and its workload.
pub struct Row<'a> {
    /// The row's name (unique within a run: ratios find rows by it).
    pub name: String,
    /// The unit of its throughput, e.g. `ops/s` or `keys/s`.
    pub unit: &'static str,
    /// Units per call: 1 for single-key operations, the batch size for batch rows.
    pub per_call: usize,
    /// Calls per run.
    pub ops: usize,
    /// The workload.
    pub run: Workload<'a>,
}

impl std::fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("name", &self.name)
            .field("unit", &self.unit)
            .field("per_call", &self.per_call)
            .field("ops", &self.ops)
            .finish_non_exhaustive()
    }
}

/// A row of `ops` calls of `f`, `inflight` at once, each call worth `per_call` `unit`s.
///
/// ```
/// let r = memstache_bench::row("noop", "ops/s", 1, 1_000, 4, |_i| async {});
/// assert_eq!(r.name, "noop");
/// ```
pub fn row<'a, F, Fut>(
    name: impl Into<String>,
    unit: &'static str,
    per_call: usize,
    ops: usize,
    inflight: usize,
    f: F,
) -> Row<'a>
where
    F: Fn(usize) -> Fut + 'a,
    Fut: Future<Output = ()> + 'a,
{
    Row {
        name: name.into(),
        unit,
        per_call,
        ops,
        run: Box::new(move |rt: &Runtime, n: usize| rt.block_on(drive(n, inflight, &f))),
    }
}

/// The order in which round `round` runs `n` rows: every row once, starting `round` rows
/// later than round 0 (so no row always runs first, right after another's cleanup).
///
/// ```
/// let order: Vec<usize> = memstache_bench::round_order(1, 3).collect();
/// assert_eq!(order, [1, 2, 0]);
/// ```
pub fn round_order(round: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |j| (j + round) % n)
}

/// Whether a row named `name` runs under `filter` (a substring of the name; none runs all).
///
/// ```
/// assert!(memstache_bench::keep(Some("redis-rs"), "redis-rs raw GET @64"));
/// assert!(!memstache_bench::keep(Some("fred"), "redis-rs raw GET @64"));
/// assert!(memstache_bench::keep(None, "anything"));
/// ```
pub fn keep(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| name.contains(f))
}

/// Measures groups of rows in interleaved rounds and collects a [`Report`].
///
/// ```
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let mut bench = memstache_bench::Bench::new(rt, 2);
/// bench.group("noops", vec![
///     memstache_bench::row("a", "ops/s", 1, 100, 1, |_| async {}),
///     memstache_bench::row("b", "ops/s", 1, 100, 1, |_| async {}),
/// ]);
/// bench.ratio("a / b", "a", "b", None);
/// let report = bench.into_report();
/// assert_eq!(report.groups[0].rows.len(), 2);
/// assert_eq!(report.ratios.len(), 1);
/// ```
#[derive(Debug)]
pub struct Bench {
    rt: Runtime,
    rounds: usize,
    filter: Option<String>,
    live: bool,
    ratios_started: bool,
    report: Report,
}

impl Bench {
    /// A bench of `rounds` rounds (at least 1) on `rt`, running every row, printing nothing.
    pub fn new(rt: Runtime, rounds: usize) -> Self {
        Bench {
            rt,
            rounds: rounds.max(1),
            filter: None,
            live: false,
            ratios_started: false,
            report: Report::default(),
        }
    }

    /// A bench configured from the environment, as the repository's benches are:
    /// `MEMSTACHE_BENCH_RUNS` rounds (else `default_rounds`), rows filtered by
    /// `MEMSTACHE_BENCH_FILTER`, each group and ratio printed as soon as it is measured.
    pub fn from_env(rt: Runtime, default_rounds: usize) -> Self {
        let rounds = std::env::var("MEMSTACHE_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_rounds);
        Bench::new(rt, rounds)
            .filter(std::env::var("MEMSTACHE_BENCH_FILTER").ok())
            .live(true)
    }

    /// Runs only rows whose name contains `filter` (see [`keep`]).
    #[must_use]
    pub fn filter(mut self, filter: Option<String>) -> Self {
        self.filter = filter;
        self
    }

    /// Prints each group and ratio to stdout as soon as it is measured.
    #[must_use]
    pub fn live(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// Sets the report's title (printed first by its `Display`).
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.report.title = title.into();
        self
    }

    /// The runtime the rows run on.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The number of rounds.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Measures `rows` (those the filter keeps) in interleaved rounds: a warm-up run of each
    /// (a quarter of its calls), then every row once per round in [`round_order`].
    pub fn group(&mut self, title: &str, rows: Vec<Row<'_>>) {
        let filter = self.filter.as_deref();
        let mut rows: Vec<Row<'_>> = rows.into_iter().filter(|r| keep(filter, &r.name)).collect();
        if rows.is_empty() {
            return;
        }
        let mut rates = vec![Vec::with_capacity(self.rounds); rows.len()];
        let mut cpu = vec![Some(0.0f64); rows.len()];
        let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); rows.len()];
        for r in rows.iter_mut() {
            (r.run)(&self.rt, (r.ops / 4).max(1));
        }
        for round in 0..self.rounds {
            for i in round_order(round, rows.len()) {
                let r = &mut rows[i];
                let s = (r.run)(&self.rt, r.ops);
                rates[i].push(r.ops as f64 * r.per_call as f64 / s.wall_s);
                cpu[i] = cpu[i].zip(s.cpu_us).map(|(a, b)| a + b);
                latencies[i].extend_from_slice(&s.latencies_ns);
            }
        }
        let measured = rows
            .iter()
            .zip(rates)
            .zip(cpu)
            .zip(latencies)
            .map(|(((r, rates), cpu), mut lat)| {
                let units = (r.ops * r.per_call * self.rounds) as f64;
                Measured::new(
                    r.name.clone(),
                    r.unit,
                    r.per_call,
                    rates,
                    cpu.map(|c| c / units),
                )
                .with_latency(Latency::of(&mut lat))
            })
            .collect();
        let group = Group {
            title: title.to_owned(),
            rows: measured,
        };
        if self.live {
            println!("{group}");
        }
        self.report.groups.push(group);
    }

    /// The row named `name`, if it was measured.
    pub fn find(&self, name: &str) -> Option<&Measured> {
        self.report.find(name)
    }

    /// Records `a / b` (see [`Ratio::of`]) against an optional target; nothing when either row
    /// was not measured (filtered out).
    pub fn ratio(&mut self, label: &str, a: &str, b: &str, target: Option<f64>) {
        let (Some(x), Some(y)) = (self.find(a), self.find(b)) else {
            return;
        };
        let r = Ratio::of(label, x, y, target);
        if self.live {
            if !self.ratios_started {
                let mut header = String::new();
                write_ratios_header(&mut header).expect("writing to a String");
                print!("{header}");
            }
            println!("{r}");
        }
        self.ratios_started = true;
        self.report.ratios.push(r);
    }

    /// Records the latency ratio `a / b` (p50 and p99 over all rounds of two rows of one call
    /// in flight, lower is better for `a`) against optional ceilings; nothing when either row
    /// was not measured or has no latencies.
    pub fn latency_ratio(&mut self, label: &str, a: &str, b: &str, ceilings: Option<(f64, f64)>) {
        let (Some(x), Some(y)) = (
            self.find(a).and_then(|m| m.latency),
            self.find(b).and_then(|m| m.latency),
        ) else {
            return;
        };
        let r = LatencyRatio::of(label, x, y, ceilings);
        if self.live {
            println!("{r}");
        }
        self.report.latency_ratios.push(r);
    }

    /// The name of whichever of `a`, `b` had the higher median throughput (`a` on a tie, `b`
    /// when `a` was not measured).
    pub fn faster<'n>(&self, a: &'n str, b: &'n str) -> &'n str {
        let m = |n: &str| self.find(n).map_or(f64::NAN, Measured::median);
        if m(a) >= m(b) { a } else { b }
    }

    /// Everything measured.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Ends the bench, returning everything measured.
    pub fn into_report(self) -> Report {
        self.report
    }
}
