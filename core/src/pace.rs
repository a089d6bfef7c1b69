//! Pacing upstream calls: at most `rate` per second on average, with
//! bursts of `burst`, for a fleet of sessions sharing one STS (which
//! throttles callers that hit it too hard). The generic cell rate
//! algorithm: one timestamp, no timer; time is given.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::ConfigError;

/// Admits calls at a steady rate. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Time between two calls at the steady rate.
    interval: Duration,
    /// How far ahead of the steady schedule a burst may run.
    tolerance: Duration,
    /// When the next call is due on the steady schedule.
    due: Option<OffsetDateTime>,
}

impl Pacer {
    /// At most `rate` calls per second on average, `burst` of them at once.
    pub fn new(rate: f64, burst: u32) -> Result<Self, ConfigError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ConfigError::new(
                "max_refreshes_per_second",
                "must be a positive number of calls per second",
            ));
        }
        if burst == 0 {
            return Err(ConfigError::new("burst", "must be at least 1"));
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        Ok(Self {
            interval,
            tolerance: interval * (burst - 1),
            due: None,
        })
    }

    /// Books a call wanted at `now`: how long it must wait before it goes.
    /// Every call booked is admitted; later ones wait longer.
    pub fn admit(&mut self, now: OffsetDateTime) -> Duration {
        let due = self.due.map_or(now, |due| due.max(now));
        let wait = Duration::try_from(due - now)
            .unwrap_or_default()
            .saturating_sub(self.tolerance);
        self.due = Some(due + self.interval);
        wait
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let mut pacer = Pacer::new(2.0, 3).expect("valid");
        let waits: Vec<Duration> = (0..5).map(|_| pacer.admit(T0)).collect();
        let ms = Duration::from_millis;
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(500), ms(1000)]);
    }

    #[test]
    fn nonsense_rates_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Pacer::new(rate, 1).is_err(), "{rate}");
        }
        assert!(Pacer::new(1.0, 0).is_err());
    }

    proptest! {
        /// However calls arrive, no second of departures holds more than
        /// `rate + burst` of them.
        #[test]
        fn departures_never_exceed_rate_plus_burst_in_any_second(
            rate in 1u32..50,
            burst in 1u32..10,
            gaps_ms in proptest::collection::vec(0u64..400, 1..300),
        ) {
            let mut pacer = Pacer::new(f64::from(rate), burst).expect("valid");
            let mut now = T0;
            let mut departures = Vec::new();
            for gap in gaps_ms {
                now += Duration::from_millis(gap);
                departures.push(now + pacer.admit(now));
            }
            departures.sort();
            for (i, start) in departures.iter().enumerate() {
                let in_second = departures[i..]
                    .iter()
                    .take_while(|d| **d < *start + Duration::from_secs(1))
                    .count();
                prop_assert!(in_second as u32 <= rate + burst, "{in_second} in one second");
            }
        }
    }
}
