//! When a session tries again after a failed refresh, as the AWS SDKs do
//! from 2026, and the jitter that spreads sessions apart. Under persistent
//! failure of any kind a session makes at most a dozen attempts an hour
//! while it still serves a valid credential, and about one a minute once
//! it has none: STS quotas are shared by the whole account.

use std::time::Duration;

/// After a recoverable failure while a valid credential is served: 300 s,
/// plus up to as much again of jitter.
const WHILE_SERVING: Duration = Duration::from_secs(300);
/// With nothing valid left: full jitter over a ceiling that doubles from
/// 1 s to this, then this.
const CAP: Duration = Duration::from_secs(60);
const BASE: Duration = Duration::from_secs(1);
/// After a failure that trying again will not fix (access denied, a bad
/// MFA code): no sooner than this, whatever the callers.
const NON_RECOVERABLE: Duration = Duration::from_secs(5);

/// A seeded generator of jitter (splitmix64): the same seed gives the same
/// sequence, so the engine stays deterministic.
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
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the session still has when a refresh fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    /// A credential callers keep getting: before its mandatory window, or
    /// in it after a recoverable failure.
    Serving,
    /// A valid credential that callers no longer get (the mandatory window,
    /// after a failure that trying again will not fix).
    Withheld,
    /// Nothing valid.
    Nothing,
}

/// Consecutive failures with nothing valid to serve.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt after a failure.
    pub(crate) fn fail(
        &mut self,
        recoverable: bool,
        holding: Holding,
        jitter: &mut Jitter,
    ) -> Duration {
        match holding {
            Holding::Serving => WHILE_SERVING + WHILE_SERVING.mul_f64(jitter.next_unit()),
            Holding::Withheld => NON_RECOVERABLE,
            Holding::Nothing => {
                self.failures = self.failures.saturating_add(1);
                let exponent = (self.failures - 1).min(16);
                let ceiling = (BASE * 2u32.pow(exponent)).min(CAP);
                // Once the ramp reaches the cap, once a minute: the ramp's
                // jitter has already spread sessions that failed together.
                let delay = match ceiling < CAP {
                    true => ceiling.mul_f64(jitter.next_unit()),
                    false => CAP,
                };
                match recoverable {
                    true => delay,
                    false => delay.max(NON_RECOVERABLE),
                }
            }
        }
    }

    /// A refresh succeeded.
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
    fn while_serving_the_next_attempt_waits_five_to_ten_minutes() {
        let mut jitter = Jitter::new(1);
        let mut backoff = Backoff::default();
        for recoverable in [true, false] {
            for _ in 0..100 {
                let delay = backoff.fail(recoverable, Holding::Serving, &mut jitter);
                assert!(
                    (WHILE_SERVING..WHILE_SERVING * 2).contains(&delay),
                    "{delay:?}"
                );
            }
        }
    }

    #[test]
    fn with_nothing_left_delays_ramp_up_to_once_a_minute() {
        let mut jitter = Jitter::new(3);
        let mut backoff = Backoff::default();
        let mut ramp = Duration::ZERO;
        for n in 0..6 {
            let delay = backoff.fail(true, Holding::Nothing, &mut jitter);
            assert!(delay <= BASE * 2u32.pow(n), "{delay:?}");
            ramp += delay;
        }
        assert!(ramp < CAP, "the ramp is within the first minute");
        for _ in 0..10 {
            assert_eq!(backoff.fail(true, Holding::Nothing, &mut jitter), CAP);
        }
        backoff.reset();
        assert!(backoff.fail(true, Holding::Nothing, &mut jitter) <= BASE);
    }

    #[test]
    fn failures_trying_again_will_not_fix_are_spaced_by_five_seconds_at_least() {
        let mut jitter = Jitter::new(5);
        let mut backoff = Backoff::default();
        assert_eq!(
            backoff.fail(false, Holding::Withheld, &mut jitter),
            NON_RECOVERABLE
        );
        for _ in 0..10 {
            assert!(backoff.fail(false, Holding::Nothing, &mut jitter) >= NON_RECOVERABLE);
        }
    }
}
