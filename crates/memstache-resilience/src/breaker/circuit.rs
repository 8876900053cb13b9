//! The circuit's state machine and its bucketed sliding window.
//!
//! The window is a ring of `BUCKETS` counters, each covering `window / BUCKETS`. Recording a
//! call touches one bucket; deciding whether to open sums the ring (a fixed `BUCKETS`
//! additions), so the cost of a call does not depend on how many calls the window holds. The
//! state is an atomic read on every call; the ring sits behind a mutex held for a handful of
//! additions.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{BreakerConfig, BreakerState};

/// Buckets per window: the window slides in steps of a tenth of its length.
pub(crate) const BUCKETS: usize = 10;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket period (`elapsed / bucket_len`) the counts belong to.
    period: u64,
    calls: u64,
    failures: u64,
}

#[derive(Debug)]
struct Window {
    buckets: [Bucket; BUCKETS],
}

impl Window {
    fn new() -> Self {
        Window {
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// Records one call in period `now`; returns the calls and failures of the last
    /// `BUCKETS` periods (this one included).
    fn record(&mut self, now: u64, failed: bool) -> (u64, u64) {
        // Period numbers start at 1 so that a fresh bucket (period 0) never counts as current.
        let slot = &mut self.buckets[(now % BUCKETS as u64) as usize];
        if slot.period != now {
            *slot = Bucket {
                period: now,
                calls: 0,
                failures: 0,
            };
        }
        slot.calls += 1;
        slot.failures += u64::from(failed);
        let oldest = now.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.period >= oldest && b.period <= now)
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Closed: call, then record the outcome.
    Call,
    /// Half-open: one of the probe calls; its outcome decides the state.
    Probe,
    /// Open (or half-open with every probe taken): fail fast.
    Rejected,
}

/// One circuit, shared by every service of one layer.
pub(crate) struct Circuit {
    config: BreakerConfig,
    origin: Instant,
    bucket_len: Duration,
    state: AtomicU8,
    /// Milliseconds since `origin` when the circuit last opened.
    opened_at: AtomicU64,
    /// Probe calls that may still start in this half-open period.
    probes_left: AtomicUsize,
    /// Probe calls of this half-open period that succeeded.
    probes_passed: AtomicUsize,
    window: Mutex<Window>,
    transitions: AtomicU64,
    times_opened: AtomicU64,
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Circuit {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let bucket_len = (config.window / BUCKETS as u32).max(Duration::from_millis(1));
        Circuit {
            config,
            origin: Instant::now(),
            bucket_len,
            state: AtomicU8::new(CLOSED),
            opened_at: AtomicU64::new(0),
            probes_left: AtomicUsize::new(0),
            probes_passed: AtomicUsize::new(0),
            window: Mutex::new(Window::new()),
            transitions: AtomicU64::new(0),
            times_opened: AtomicU64::new(0),
        }
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn period(&self) -> u64 {
        // +1: period 0 marks a bucket never used.
        (self.elapsed().as_nanos() / self.bucket_len.as_nanos()) as u64 + 1
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    pub(crate) fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    pub(crate) fn times_opened(&self) -> u64 {
        self.times_opened.load(Ordering::Relaxed)
    }

    fn transition(&self, from: u8, to: u8) -> bool {
        if self
            .state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let name = |s| match s {
            CLOSED => "closed",
            OPEN => "open",
            _ => "half-open",
        };
        tracing::warn!(
            from = name(from),
            to = name(to),
            "memstache: backend circuit breaker changed state"
        );
        true
    }

    fn open(&self, from: u8) {
        // The time is stored before the state flips, so a caller that sees Open also sees
        // when it opened. A concurrent opener that loses the race has stored a time a few
        // microseconds off the winner's: harmless.
        self.opened_at
            .store(self.elapsed().as_millis() as u64, Ordering::Release);
        if self.transition(from, OPEN) {
            self.times_opened.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks to make a call.
    pub(crate) fn acquire(&self) -> Permit {
        loop {
            match self.state.load(Ordering::Acquire) {
                CLOSED => return Permit::Call,
                OPEN => {
                    let since = self.opened_at.load(Ordering::Acquire);
                    let now = self.elapsed().as_millis() as u64;
                    if now.saturating_sub(since) < self.config.open_for.as_millis() as u64 {
                        return Permit::Rejected;
                    }
                    if self.transition(OPEN, HALF_OPEN) {
                        // The caller that moved it takes the first probe. Until the budget
                        // is stored, others see none left and fail fast.
                        self.probes_passed.store(0, Ordering::Release);
                        self.probes_left
                            .store(self.config.half_open_probes.max(1) - 1, Ordering::Release);
                        return Permit::Probe;
                    }
                    // A concurrent caller moved it on: look again.
                }
                _ => {
                    let taken =
                        self.probes_left
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                                n.checked_sub(1)
                            });
                    return if taken.is_ok() {
                        Permit::Probe
                    } else {
                        Permit::Rejected
                    };
                }
            }
        }
    }

    /// Records the outcome of a [`Permit::Call`].
    pub(crate) fn record(&self, failed: bool) {
        let period = self.period();
        let (calls, failures) = self.window.lock().record(period, failed);
        if failed
            && calls >= self.config.min_calls as u64
            && failures as f64 >= self.config.failure_rate * calls as f64
            && self.state.load(Ordering::Acquire) == CLOSED
        {
            self.open(CLOSED);
        }
    }

    /// Records the outcome of a [`Permit::Probe`].
    pub(crate) fn record_probe(&self, failed: bool) {
        if self.state.load(Ordering::Acquire) != HALF_OPEN {
            return;
        }
        if failed {
            self.probes_left.store(0, Ordering::Release);
            self.open(HALF_OPEN);
            return;
        }
        let passed = self.probes_passed.fetch_add(1, Ordering::AcqRel) + 1;
        if passed >= self.config.half_open_probes.max(1) {
            self.probes_left.store(0, Ordering::Release);
            self.window.lock().clear();
            self.transition(HALF_OPEN, CLOSED);
        }
    }

    /// A probe that ended without an outcome (its caller went away): its place goes back, so
    /// a half-open circuit is never left without probes.
    pub(crate) fn release_probe(&self) {
        if self.state.load(Ordering::Acquire) == HALF_OPEN {
            self.probes_left.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig::default()
            .window(Duration::from_secs(10))
            .min_calls(4)
            .failure_rate(0.5)
            .open_for(Duration::from_secs(1))
            .half_open_probes(2)
    }

    #[test]
    fn window_sums_the_last_buckets_only() {
        let mut w = Window::new();
        for _ in 0..5 {
            w.record(1, true);
        }
        assert_eq!(w.record(2, false), (6, 5));
        // Period 11 is ten periods after 1: bucket 1 has left the window.
        assert_eq!(w.record(11, false), (2, 0));
        // Period 12 reuses period 2's slot and starts it from zero.
        assert_eq!(w.record(12, true), (2, 1));
        // Period 20 sees 11..=20: periods 11 and 12, and itself.
        assert_eq!(w.record(20, false), (3, 1));
        // Period 22 sees 13..=22: 12 has left.
        assert_eq!(w.record(22, false), (2, 0));
        w.clear();
        assert_eq!(w.record(12, false), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_at_the_rate_then_probes_then_closes() {
        let c = Circuit::new(config());
        for _ in 0..3 {
            assert_eq!(c.acquire(), Permit::Call);
            c.record(true);
        }
        assert_eq!(c.state(), BreakerState::Closed, "below min_calls");
        c.record(true);
        assert_eq!(c.state(), BreakerState::Open);
        assert_eq!(c.acquire(), Permit::Rejected);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(c.acquire(), Permit::Probe);
        assert_eq!(c.acquire(), Permit::Probe);
        assert_eq!(c.acquire(), Permit::Rejected, "only two probes");
        c.record_probe(false);
        assert_eq!(c.state(), BreakerState::HalfOpen);
        c.record_probe(false);
        assert_eq!(c.state(), BreakerState::Closed);
        assert_eq!(c.times_opened(), 1);
        assert_eq!(c.transitions(), 3);
        // The window was cleared on closing: one failure does not reopen it.
        c.record(true);
        assert_eq!(c.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_a_dropped_probe_gives_its_place_back() {
        let c = Circuit::new(config().half_open_probes(1));
        for _ in 0..4 {
            c.record(true);
        }
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(c.acquire(), Permit::Probe);
        assert_eq!(c.acquire(), Permit::Rejected);
        c.release_probe();
        assert_eq!(
            c.acquire(),
            Permit::Probe,
            "the released place is free again"
        );
        c.record_probe(true);
        assert_eq!(c.state(), BreakerState::Open);
        assert_eq!(c.acquire(), Permit::Rejected, "open for another open_for");
        assert_eq!(c.times_opened(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn successes_keep_it_closed_and_old_failures_slide_out() {
        let c = Circuit::new(config());
        for _ in 0..3 {
            c.record(true);
        }
        for _ in 0..4 {
            c.record(false);
        }
        c.record(true); // 4 failures of 8: the rate is reached
        assert_eq!(c.state(), BreakerState::Open);

        let c = Circuit::new(config());
        for _ in 0..3 {
            c.record(true);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        c.record(true);
        assert_eq!(
            c.state(),
            BreakerState::Closed,
            "failures older than the window do not count"
        );
    }
}
