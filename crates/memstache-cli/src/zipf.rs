//! A seeded Zipf workload: rank `k` (0-based) is requested with probability ∝ 1 / (k + 1)^s.

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

/// Samples ranks `0..n` from a Zipf(s) distribution by inverting its exact CDF.
#[derive(Debug, Clone)]
pub(crate) struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n ≥ 1` ranks with exponent `s ≥ 0` (`s = 0` is uniform).
    pub(crate) fn new(n: usize, s: f64) -> Result<Zipf, String> {
        if n == 0 {
            return Err("the number of keys must be at least 1".into());
        }
        if !s.is_finite() || s < 0.0 {
            return Err(format!(
                "the Zipf exponent must be finite and >= 0, got {s}"
            ));
        }
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += (k as f64).powf(-s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Ok(Zipf { cdf })
    }

    /// One rank for a uniform `u` in `[0, 1)`.
    pub(crate) fn rank(&self, u: f64) -> usize {
        let i = self.cdf.partition_point(|&c| c <= u);
        i.min(self.cdf.len() - 1)
    }

    /// `count` ranks drawn with a generator seeded by `seed` (the same seed, the same ranks).
    pub(crate) fn sample(&self, count: usize, seed: u64) -> Vec<u32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let rank = self.rank(rng.random::<f64>());
                u32::try_from(rank).unwrap_or(u32::MAX)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters() {
        assert!(Zipf::new(0, 1.0).is_err());
        assert!(Zipf::new(10, -0.5).is_err());
        assert!(Zipf::new(10, f64::NAN).is_err());
        assert!(Zipf::new(10, f64::INFINITY).is_err());
    }

    #[test]
    fn ranks_stay_in_range_at_the_edges() {
        let z = Zipf::new(5, 1.0).unwrap();
        assert_eq!(z.rank(0.0), 0);
        assert_eq!(z.rank(0.999_999_999), 4);
        assert_eq!(z.rank(1.0), 4);
        assert_eq!(Zipf::new(1, 1.0).unwrap().rank(0.7), 0);
    }

    #[test]
    fn same_seed_same_workload_other_seed_other_workload() {
        let z = Zipf::new(1000, 1.0).unwrap();
        assert_eq!(z.sample(500, 7), z.sample(500, 7));
        assert_ne!(z.sample(500, 7), z.sample(500, 8));
    }

    #[test]
    fn frequencies_follow_the_zipf_law() {
        // With s = 1 over 100 ranks, P(rank 0) = 1 / H(100) ≈ 0.1928 and P(rank 1) is half of it.
        let z = Zipf::new(100, 1.0).unwrap();
        let draws = z.sample(200_000, 42);
        let mut counts = [0u32; 100];
        for r in draws {
            counts[r as usize] += 1;
        }
        let p0 = f64::from(counts[0]) / 200_000.0;
        assert!((p0 - 0.1928).abs() < 0.005, "p0 = {p0}");
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((ratio - 2.0).abs() < 0.1, "ratio = {ratio}");
        assert!(counts[99] > 0);
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let z = Zipf::new(4, 0.0).unwrap();
        let draws = z.sample(40_000, 1);
        for k in 0..4 {
            let n = draws.iter().filter(|&&r| r == k).count();
            assert!((9_000..11_000).contains(&n), "rank {k}: {n}");
        }
    }
}
