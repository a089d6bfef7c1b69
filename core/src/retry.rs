//! Retries of a refresh's upstream calls: capped exponential backoff with
//! full jitter, a bounded number of attempts and a total deadline, as the
//! AWS SDKs' standard retry mode does. Terminal errors (access denied,
//! validation, bad MFA codes) are never retried.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::ConfigError;
use crate::saturating;

/// How a refresh retries its upstream calls (STS, the IoT credential provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    deadline: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, backoff from 1 s doubling up to 20 s (the AWS SDKs'
    /// standard mode), all within 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            deadline: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy; `max_attempts` counts the first call (1 means no retry),
    /// `deadline` bounds the time from the first call to the last retry.
    pub fn new(max_attempts: u32, deadline: Duration) -> Result<Self, ConfigError> {
        if max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1 (the first call); 1 means no retries",
            ));
        }
        if deadline.is_zero() {
            return Err(ConfigError::new(
                "retry_deadline",
                "must be greater than zero",
            ));
        }
        Ok(Self {
            max_attempts,
            deadline,
            ..Self::default()
        })
    }

    /// The attempts allowed, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time allowed from the first call to the last retry.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// How long to wait before attempt `attempt + 1`, after attempt
    /// `attempt` (counting from 1) failed at `now` in a refresh whose first
    /// call went out at `started`; `None` if no attempt is left or the
    /// deadline would pass. `jitter` is in `0.0..1.0`: full jitter, a
    /// uniform delay up to the exponential ceiling.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        started: OffsetDateTime,
        now: OffsetDateTime,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.pow(exponent))
            .min(self.max_backoff);
        let delay = saturating::scale(ceiling, jitter);
        (saturating::add(now, delay) <= saturating::add(started, self.deadline)).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    #[test]
    fn full_jitter_up_to_a_doubling_ceiling() {
        let policy = RetryPolicy::new(10, Duration::from_secs(600)).expect("valid");
        let ceiling = |attempt| policy.delay(attempt, T0, T0, 1.0).expect("allowed");
        assert_eq!(ceiling(1), Duration::from_secs(1));
        assert_eq!(ceiling(2), Duration::from_secs(2));
        assert_eq!(ceiling(5), Duration::from_secs(16));
        assert_eq!(ceiling(6), Duration::from_secs(20), "capped");
        assert_eq!(policy.delay(3, T0, T0, 0.0), Some(Duration::ZERO));
        assert_eq!(policy.delay(3, T0, T0, 0.5), Some(Duration::from_secs(2)));
    }

    #[test]
    fn attempts_and_the_deadline_bound_retries() {
        let policy = RetryPolicy::default();
        assert!(policy.delay(2, T0, T0, 0.5).is_some());
        assert_eq!(policy.delay(3, T0, T0, 0.5), None, "three attempts made");
        let late = T0 + Duration::from_millis(29_500);
        assert_eq!(policy.delay(1, T0, late, 0.9), None, "past the deadline");
        assert!(
            policy.delay(1, T0, late, 0.1).is_some(),
            "a short delay still fits"
        );
    }

    #[test]
    fn invalid_values_name_their_field() {
        assert_eq!(
            RetryPolicy::new(0, Duration::from_secs(1))
                .unwrap_err()
                .field(),
            "max_attempts"
        );
        assert_eq!(
            RetryPolicy::new(1, Duration::ZERO).unwrap_err().field(),
            "retry_deadline"
        );
    }
}
