//! Time arithmetic that cannot panic. Times and durations reach the core
//! from outside (`Date` headers, expirations, token TTLs, configured
//! timeouts), so a sum may pass the end of `time`'s range: it stops there.

use std::time::Duration;

use time::OffsetDateTime;

/// `at + by`, or the end of time.
pub(crate) fn add(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    at.saturating_add(signed(by))
}

/// `at - by`, or the start of time.
pub(crate) fn sub(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    at.saturating_sub(signed(by))
}

/// `at` shifted by a signed offset, stopping at either end of time.
pub(crate) fn shift(at: OffsetDateTime, by: time::Duration) -> OffsetDateTime {
    at.saturating_add(by)
}

/// `later - earlier` as a `Duration`; zero when `later` is not later.
pub(crate) fn between(earlier: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or_default()
}

/// `by` scaled by `factor` (in `0.0..=1.0`); never more than `by`.
pub(crate) fn scale(by: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(by.as_secs_f64() * factor.clamp(0.0, 1.0))
        .map_or(by, |scaled| scaled.min(by))
}

fn signed(by: Duration) -> time::Duration {
    time::Duration::try_from(by).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn sums_stop_at_the_ends_of_time() {
        let now = datetime!(2026-12-04 00:00 UTC);
        let end = add(now, Duration::MAX);
        assert!(end > now && add(end, Duration::from_secs(1)) == end);
        let start = sub(now, Duration::MAX);
        assert!(start < now && sub(start, Duration::from_secs(1)) == start);
        assert_eq!(between(end, start), Duration::ZERO);
        assert_eq!(shift(end, time::Duration::MAX), end);
        assert_eq!(scale(Duration::MAX, 1.0), Duration::MAX);
        assert_eq!(scale(Duration::from_secs(10), 0.5), Duration::from_secs(5));
    }
}
