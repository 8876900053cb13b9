//! Hit-ratio sweeps: every policy over a range of capacities on one trace, as a table and as a
//! hit-ratio-vs-capacity chart (SVG). `cargo xtask hit-ratio --sweep` runs it over a trace
//! directory; a user can point it at their own ARC/LIRS traces to choose a policy.
//!
//! ```
//! use memstache_harness::sweep::{default_capacities, footprint, sweep};
//! use memstache_harness::synthetic::zipf;
//! use memstache_harness::traces::Trace;
//!
//! let trace = Trace { name: "zipf".into(), requests: zipf(1, 2_000, 0.9, 20_000) };
//! let unique = footprint(&trace);
//! let caps = default_capacities(unique, 4);
//! let result = sweep(&trace, unique, &memstache_eviction::all(), &caps);
//! assert_eq!(result.rows.len(), caps.len());
//! // Belady's optimum bounds every policy
//! for row in &result.rows {
//!     assert!(row.ratios.iter().all(|(_, r)| *r <= row.optimal + 1e-9));
//! }
//! let svg = result.svg();
//! assert!(svg.starts_with("<svg") && svg.contains("tinylfu"));
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memstache_core::raw::EvictionPolicy;
use plotters::prelude::*;

use crate::traces::{Trace, replay, replay_optimal};

/// One capacity of a sweep: every policy's hit ratio and Belady's optimum, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The capacity in entries.
    pub capacity: usize,
    /// `(policy name, hit ratio %)`, in the order the policies were given.
    pub ratios: Vec<(&'static str, f64)>,
    /// Belady's offline optimum (MIN) at this capacity, %.
    pub optimal: f64,
}

impl Row {
    /// The hit ratio of `policy` at this capacity, if it was swept.
    pub fn ratio(&self, policy: &str) -> Option<f64> {
        self.ratios.iter().find(|(p, _)| *p == policy).map(|r| r.1)
    }
}

/// The result of [`sweep`] on one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The trace's short name.
    pub trace: String,
    /// Requests in the trace.
    pub requests: usize,
    /// Distinct blocks in the trace (its footprint).
    pub unique: usize,
    /// One row per capacity, ascending.
    pub rows: Vec<Row>,
}

/// Distinct blocks in `trace`.
pub fn footprint(trace: &Trace) -> usize {
    trace
        .requests
        .iter()
        .copied()
        .collect::<HashSet<u64>>()
        .len()
}

/// `points` capacities spread geometrically from 1/256 of a trace's [`footprint`] up to the
/// whole footprint (at least 16 entries; rounded to two significant digits; duplicates removed).
/// At the footprint every policy reaches the optimum (only cold misses), so the curves meet
/// on the right.
pub fn default_capacities(footprint: usize, points: usize) -> Vec<usize> {
    let unique = footprint.max(16);
    let points = points.max(2);
    let low = (unique as f64 / 256.0).max(16.0);
    let high = unique as f64;
    let mut out: Vec<usize> = (0..points)
        .map(|i| {
            let f = i as f64 / (points - 1) as f64;
            round2(low * (high / low).powf(f))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Rounds to two significant digits (1 234 → 1 200), never below 1.
fn round2(x: f64) -> usize {
    if x < 100.0 {
        return x.round().max(1.0) as usize;
    }
    let scale = 10f64.powi(x.log10().floor() as i32 - 1);
    ((x / scale).round() * scale) as usize
}

/// Replays `trace` under every policy at every capacity (cold start, one state of that
/// capacity, see [`replay`]) and under Belady's optimum. Capacities run in parallel on the
/// available cores. `footprint` is the trace's [`footprint`] (computed once by the caller,
/// who usually needed it for [`default_capacities`] too).
pub fn sweep(
    trace: &Trace,
    footprint: usize,
    policies: &[Arc<dyn EvictionPolicy>],
    capacities: &[usize],
) -> Sweep {
    let mut caps: Vec<usize> = capacities.to_vec();
    caps.sort_unstable();
    caps.dedup();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = caps.len().div_ceil(threads).max(1);
    let mut rows: Vec<Option<Row>> = vec![None; caps.len()];
    std::thread::scope(|s| {
        for (lane, chunk) in rows.chunks_mut(per_thread).enumerate() {
            let caps = &caps;
            let start = lane * per_thread;
            s.spawn(move || {
                for (k, slot) in chunk.iter_mut().enumerate() {
                    let capacity = caps[start + k];
                    let ratios = policies
                        .iter()
                        .map(|p| {
                            let r = replay(p.as_ref(), capacity, &trace.requests);
                            (p.name(), r.hit_ratio_percent())
                        })
                        .collect();
                    let optimal = replay_optimal(capacity, &trace.requests).hit_ratio_percent();
                    *slot = Some(Row {
                        capacity,
                        ratios,
                        optimal,
                    });
                }
            });
        }
    });
    Sweep {
        trace: trace.name.clone(),
        requests: trace.requests.len(),
        unique: footprint,
        rows: rows.into_iter().flatten().collect(),
    }
}

impl Sweep {
    /// The policy names, in column order.
    pub fn policies(&self) -> Vec<&'static str> {
        self.rows
            .first()
            .map(|r| r.ratios.iter().map(|(p, _)| *p).collect())
            .unwrap_or_default()
    }

    /// A Markdown table: one row per capacity, one column per policy, then the optimum. The
    /// best policy of each row is bold.
    pub fn markdown(&self) -> String {
        let policies = self.policies();
        let mut out = format!(
            "**{}** ({} requests, {} distinct blocks)\n\n| capacity |",
            self.trace, self.requests, self.unique
        );
        for p in &policies {
            let _ = write!(out, " `{p}` |");
        }
        out.push_str(" optimal |\n|---:|");
        for _ in &policies {
            out.push_str("---:|");
        }
        out.push_str("---:|\n");
        for row in &self.rows {
            let best = row.ratios.iter().map(|r| r.1).fold(f64::MIN, f64::max);
            let _ = write!(out, "| {} |", row.capacity);
            for (_, r) in &row.ratios {
                if (r - best).abs() < 0.005 {
                    let _ = write!(out, " **{r:.2}** |");
                } else {
                    let _ = write!(out, " {r:.2} |");
                }
            }
            let _ = writeln!(out, " {:.2} |", row.optimal);
        }
        out
    }

    /// The hit-ratio-vs-capacity chart (capacity on a log axis) as an SVG document: one line
    /// per policy, the optimum dashed.
    pub fn svg(&self) -> String {
        let mut svg = String::new();
        // drawing into a String cannot fail for I/O reasons; a plotting error (e.g. an empty
        // sweep) leaves a chart without series, which is still a valid document
        let _ = self.draw(&mut svg);
        svg
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(out, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let lo = self.rows.first().map_or(1, |r| r.capacity).max(1) as f64;
        let hi = self.rows.last().map_or(2, |r| r.capacity).max(2) as f64;
        let top = self.rows.iter().map(|r| r.optimal).fold(1.0_f64, f64::max);
        let top = ((top / 10.0).ceil() * 10.0).min(100.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: hit ratio by capacity ({} requests, {} blocks)",
                    self.trace, self.requests, self.unique
                ),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((lo * 0.95..hi * 1.05).log_scale(), 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("capacity (entries, log scale)")
            .y_desc("hit ratio %")
            .x_label_formatter(&|x| format!("{}", round2(*x)))
            .draw()?;
        for (i, name) in self.policies().into_iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = self
                .rows
                .iter()
                .filter_map(|r| r.ratio(name).map(|v| (r.capacity as f64, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )?;
        }
        let optimal: Vec<(f64, f64)> = self
            .rows
            .iter()
            .map(|r| (r.capacity as f64, r.optimal))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(optimal, 6, 4, BLACK.stroke_width(1)))?
            .label("optimal (Belady)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// The trace files in `dir` that [`Trace::load`] reads (ARC `.lis`, LIRS `.trace`, either
/// optionally `.zst`/`.gz`), sorted by name.
///
/// # Errors
///
/// The directory cannot be read.
pub fn trace_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let base = name
                .strip_suffix(".zst")
                .or_else(|| name.strip_suffix(".gz"))
                .unwrap_or(name);
            p.is_file() && (base.ends_with(".lis") || base.ends_with(".trace"))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_geometric_rounded_and_bounded() {
        let t = Trace {
            name: "t".into(),
            requests: (0..100_000).collect(),
        };
        let c = default_capacities(footprint(&t), 9);
        assert_eq!(c.first(), Some(&390));
        assert_eq!(c.last(), Some(&100_000));
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        let small = Trace {
            name: "s".into(),
            requests: (0..10).collect(),
        };
        assert_eq!(default_capacities(footprint(&small), 5), [16]);
        assert_eq!(round2(1_234.0), 1_200);
        assert_eq!(round2(98.6), 99);
    }

    #[test]
    fn trace_files_keeps_only_readable_formats() {
        let dir = std::env::temp_dir().join(format!("sweep-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["a.lis", "b.trace.gz", "c.lis.zst", "README.md", "d.txt"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let names: Vec<String> = trace_files(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a.lis", "b.trace.gz", "c.lis.zst"]);
    }
}
