//! What a run measured, the ratios, and the table they print as.

use std::fmt;

/// The median of the finite values of `xs` (the upper one of an even count); NaN when none is
/// finite. A NaN or infinite rate (a run too short to time) is left out, not sorted in.
///
/// ```
/// assert_eq!(memstache_bench::median(&[3.0, f64::NAN, 1.0, 2.0]), 2.0);
/// assert!(memstache_bench::median(&[f64::NAN]).is_nan());
/// ```
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What one row measured.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Measured {
    /// The row's name.
    pub name: String,
    /// The unit of the rates, e.g. `ops/s`.
    pub unit: &'static str,
    /// Units per call (1, or the batch size of a batch row).
    pub per_call: usize,
    /// Throughput of each round, in units per second (calls × `per_call` / wall seconds).
    pub rates: Vec<f64>,
    /// Client CPU µs per unit over all rounds; `None` where CPU time is unavailable.
    pub cpu_us: Option<f64>,
    /// Latency percentiles over all rounds, for a row of one call in flight.
    pub latency: Option<Latency>,
}

/// The p50 and p99 latency of a row's calls, in µs (nearest rank over every call of every
/// round).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Latency {
    /// The median call, µs.
    pub p50_us: f64,
    /// The 99th percentile call, µs.
    pub p99_us: f64,
}

impl Latency {
    /// The percentiles of `latencies_ns` (sorted in place); `None` when it is empty.
    ///
    /// ```
    /// use memstache_bench::Latency;
    /// let mut ns: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
    /// let l = Latency::of(&mut ns).unwrap();
    /// assert_eq!((l.p50_us, l.p99_us), (50.0, 99.0));
    /// assert!(Latency::of(&mut Vec::new()).is_none());
    /// ```
    pub fn of(latencies_ns: &mut [u64]) -> Option<Latency> {
        if latencies_ns.is_empty() {
            return None;
        }
        latencies_ns.sort_unstable();
        let rank = |q: f64| {
            // nearest rank: the smallest value with at least q of the calls at or below it
            let n = latencies_ns.len();
            let k = ((q * n as f64).ceil() as usize).clamp(1, n);
            latencies_ns[k - 1] as f64 / 1000.0
        };
        Some(Latency {
            p50_us: rank(0.50),
            p99_us: rank(0.99),
        })
    }
}

/// `a / b` of two rows' latency percentiles (lower is better for `a`), against optional
/// ceilings for p50 and p99.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LatencyRatio {
    /// What is compared.
    pub label: String,
    /// `a`'s p50 over `b`'s.
    pub p50: f64,
    /// `a`'s p99 over `b`'s.
    pub p99: f64,
    /// The ceilings (p50, p99) the ratios are held against, if any.
    pub ceilings: Option<(f64, f64)>,
}

impl LatencyRatio {
    /// The ratio of `a`'s percentiles to `b`'s.
    ///
    /// ```
    /// use memstache_bench::{Latency, LatencyRatio};
    /// let mut a: Vec<u64> = (1..=100).map(|i| i * 1100).collect();
    /// let mut b: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
    /// let (a, b) = (Latency::of(&mut a).unwrap(), Latency::of(&mut b).unwrap());
    /// let r = LatencyRatio::of("a / b", a, b, Some((1.05, 1.10)));
    /// assert!((r.p50 - 1.1).abs() < 1e-9);
    /// assert_eq!(r.met(), Some(false));
    /// ```
    pub fn of(label: &str, a: Latency, b: Latency, ceilings: Option<(f64, f64)>) -> Self {
        LatencyRatio {
            label: label.to_owned(),
            p50: a.p50_us / b.p50_us,
            p99: a.p99_us / b.p99_us,
            ceilings,
        }
    }

    /// Whether both ratios are within their ceilings; `None` without ceilings.
    pub fn met(&self) -> Option<bool> {
        self.ceilings
            .map(|(c50, c99)| self.p50 <= c50 && self.p99 <= c99)
    }
}

impl fmt::Display for LatencyRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.ceilings, self.met()) {
            (Some((c50, c99)), Some(true)) => {
                format!("  target p50 ≤ {c50:.2}, p99 ≤ {c99:.2}: met")
            }
            (Some((c50, c99)), _) => format!("  target p50 ≤ {c50:.2}, p99 ≤ {c99:.2}: NOT met"),
            _ => String::new(),
        };
        write!(
            f,
            "  {:<66} p50 {:>5.2}×  p99 {:>5.2}×  (lower is better){verdict}",
            self.label, self.p50, self.p99
        )
    }
}

impl Measured {
    /// A measurement (for reports built by hand and for tests).
    pub fn new(
        name: impl Into<String>,
        unit: &'static str,
        per_call: usize,
        rates: Vec<f64>,
        cpu_us: Option<f64>,
    ) -> Self {
        Measured {
            name: name.into(),
            unit,
            per_call,
            rates,
            cpu_us,
            latency: None,
        }
    }

    /// The same measurement with latency percentiles.
    #[must_use]
    pub fn with_latency(mut self, latency: Option<Latency>) -> Self {
        self.latency = latency;
        self
    }

    /// The median rate over rounds.
    pub fn median(&self) -> f64 {
        median(&self.rates)
    }
}

/// `a / b`: the median of per-round throughput ratios, and the CPU ratio.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Ratio {
    /// What is compared.
    pub label: String,
    /// The median of the per-round ratios of throughput.
    pub value: f64,
    /// The ratio in each round (`a`'s rate in round r over `b`'s rate in round r).
    pub per_round: Vec<f64>,
    /// `b`'s client CPU per unit over `a`'s: the CPU-bound throughput ratio (higher is better
    /// for `a`); `None` where CPU time is unavailable.
    pub cpu: Option<f64>,
    /// The target `value` is held against, if any.
    pub target: Option<f64>,
}

impl Ratio {
    /// `a / b` from two rows measured in the same rounds. Each round's rates are divided, then
    /// the median taken: both sides of every ratio were measured seconds apart, so a machine
    /// whose speed drifts over a minute does not show up as a difference of the code.
    ///
    /// ```
    /// use memstache_bench::{Measured, Ratio};
    /// let a = Measured::new("a", "ops/s", 1, vec![200.0, 100.0, 300.0], Some(1.0));
    /// let b = Measured::new("b", "ops/s", 1, vec![100.0, 100.0, 100.0], Some(2.0));
    /// let r = Ratio::of("a / b", &a, &b, Some(1.5));
    /// assert_eq!(r.per_round, [2.0, 1.0, 3.0]);
    /// assert_eq!(r.value, 2.0);
    /// assert_eq!(r.cpu, Some(2.0));
    /// assert_eq!(r.met(), Some(true));
    /// ```
    pub fn of(label: &str, a: &Measured, b: &Measured, target: Option<f64>) -> Self {
        let per_round: Vec<f64> = a.rates.iter().zip(&b.rates).map(|(p, q)| p / q).collect();
        Ratio {
            label: label.to_owned(),
            value: median(&per_round),
            per_round,
            cpu: a.cpu_us.zip(b.cpu_us).map(|(x, y)| y / x),
            target,
        }
    }

    /// Whether the target is met; `None` without a target.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| self.value >= t)
    }
}

/// The rows of one group, in the order they were given.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Group {
    /// The group's title.
    pub title: String,
    /// Its rows.
    pub rows: Vec<Measured>,
}

/// Everything one run measured: groups of rows, then ratios.
///
/// Its `Display` is the table `memstache bench` prints: the title, each group (a row per line:
/// name, median rate and unit, client CPU per operation or key, the rate of every round), then
/// each ratio (value, CPU ratio, per-round ratios, and the target "met" or "NOT met").
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Report {
    /// The first line printed.
    pub title: String,
    /// The groups, in the order they ran.
    pub groups: Vec<Group>,
    /// The ratios, in the order they were asked for.
    pub ratios: Vec<Ratio>,
    /// The latency ratios, in the order they were asked for.
    pub latency_ratios: Vec<LatencyRatio>,
}

impl Report {
    /// The row named `name` in any group.
    pub fn find(&self, name: &str) -> Option<&Measured> {
        self.groups
            .iter()
            .flat_map(|g| &g.rows)
            .find(|m| m.name == name)
    }
}

fn join(xs: impl Iterator<Item = String>) -> String {
    xs.collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Measured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = if self.per_call == 1 { "op" } else { "key" };
        let cpu = match self.cpu_us {
            Some(c) => format!("{c:>5.2} µs CPU/{per}"),
            None => format!("  n/a µs CPU/{per}"),
        };
        write!(
            f,
            "  {:<58} {:>9.0} {} {cpu}  (rounds: {})",
            self.name,
            self.median(),
            self.unit,
            join(self.rates.iter().map(|x| format!("{:.0}k", x / 1000.0)))
        )?;
        if let Some(l) = self.latency {
            write!(f, "  p50 {:.1} µs, p99 {:.1} µs", l.p50_us, l.p99_us)?;
        }
        Ok(())
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        for m in &self.rows {
            writeln!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpu = match self.cpu {
            Some(c) => format!("{c:>5.2}×"),
            None => "  n/a".to_owned(),
        };
        let verdict = match (self.target, self.met()) {
            (Some(t), Some(true)) => format!("  target ≥ {t:.2}: met"),
            (Some(t), _) => format!("  target ≥ {t:.2}: NOT met"),
            _ => String::new(),
        };
        write!(
            f,
            "  {:<66} {:>5.2}×  CPU {cpu}  (per round: {}){verdict}",
            self.label,
            self.value,
            join(self.per_round.iter().map(|p| format!("{p:.2}")))
        )
    }
}

pub(crate) fn write_ratios_header(f: &mut impl fmt::Write) -> fmt::Result {
    writeln!(
        f,
        "ratios: median of per-round throughput ratios (higher is better for the first); CPU = \
         ratio of client CPU per unit (the CPU-bound throughput ratio)"
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.title.is_empty() {
            writeln!(f, "{}\n", self.title)?;
        }
        for g in &self.groups {
            writeln!(f, "{g}")?;
        }
        if !self.ratios.is_empty() {
            write_ratios_header(f)?;
            for r in &self.ratios {
                writeln!(f, "{r}")?;
            }
        }
        for r in &self.latency_ratios {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}
