//! Jittered exponential backoff after failed refreshes, and the
//! deterministic random numbers behind the jitter.
//!
//! The randomness is a seed handed to the engine, so a simulated run with
//! the same seed makes the same decisions.

use std::time::Duration;

/// The first delay after a failure, before the cap and the window share.
const BASE: Duration = Duration::from_secs(1);
/// The longest delay between attempts.
const CAP: Duration = Duration::from_secs(60);
/// The shortest delay, so a zero-length window cannot cause a hot loop.
const FLOOR: Duration = Duration::from_millis(100);
/// At least this many attempts fit into the window a failure happened in.
const ATTEMPTS_PER_WINDOW: u32 = 4;

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough to
/// spread refreshes; not for cryptography.
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Consecutive failures and the delay they earn.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// Records a failure and returns how long to wait before the next
    /// attempt: doubling from one second, capped at a minute and at a
    /// quarter of `window` (the time left to act in), with equal jitter
    /// (half fixed, half random) so it never collapses to zero.
    pub(crate) fn fail(&mut self, window: Duration, jitter: &mut Jitter) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = (self.failures - 1).min(16);
        let ceiling = (BASE * 2u32.pow(exponent))
            .min(CAP)
            .min(window / ATTEMPTS_PER_WINDOW)
            .max(FLOOR);
        ceiling / 2 + (ceiling / 2).mul_f64(jitter.next_unit())
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_deterministic_and_in_range() {
        let mut a = Jitter::new(7);
        let mut b = Jitter::new(7);
        for _ in 0..1000 {
            let x = a.next_unit();
            assert_eq!(x, b.next_unit());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn delays_double_then_cap_and_reset() {
        let mut jitter = Jitter::new(1);
        let mut backoff = Backoff::default();
        let window = Duration::from_secs(900);
        let first = backoff.fail(window, &mut jitter);
        assert!(
            first >= Duration::from_millis(500) && first <= BASE,
            "{first:?}"
        );
        let second = backoff.fail(window, &mut jitter);
        assert!(second >= BASE && second <= BASE * 2, "{second:?}");
        for _ in 0..20 {
            assert!(backoff.fail(window, &mut jitter) <= CAP);
        }
        backoff.reset();
        assert!(backoff.fail(window, &mut jitter) <= BASE);
    }

    #[test]
    fn short_windows_get_short_delays_but_never_zero() {
        let mut jitter = Jitter::new(3);
        let mut backoff = Backoff::default();
        for _ in 0..10 {
            let delay = backoff.fail(Duration::from_secs(1), &mut jitter);
            assert!(delay <= Duration::from_millis(250), "{delay:?}");
            assert!(delay >= FLOOR / 2, "{delay:?}");
        }
        let delay = backoff.fail(Duration::ZERO, &mut jitter);
        assert!(delay >= FLOOR / 2);
    }
}
