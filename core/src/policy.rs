//! When a credential is fresh, when it should be refreshed, and when callers
//! must wait for a refresh.
//!
//! A credential that expires at `E` is *fresh* before `E - A`, in the
//! *advisory* window until `E - M`, in the *mandatory* window until `E`, and
//! expired after. Unless the user sets them, `A` follows the credential's
//! lifetime as the AWS SDKs do from 2026 (at most 20 minutes: 5 minutes;
//! under 90 minutes: 15 minutes; longer: 60 minutes) and `M` is 60 s, or
//! `A` if smaller; both are worked out anew for every credential. `A` is at
//! most half the lifetime (and `M` shrinks in proportion), so a short-lived
//! credential is used for at least half its life instead of being refreshed
//! on every call.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::ConfigError;
use crate::saturating;

/// The mandatory timeout unless set (or the advisory one, if smaller).
pub const DEFAULT_MANDATORY_TIMEOUT: Duration = Duration::from_secs(60);

/// The advisory timeout unless set, for a credential that lives `lifetime`.
pub fn default_advisory_timeout(lifetime: Duration) -> Duration {
    let minutes = |n: u64| Duration::from_secs(n * 60);
    if lifetime <= minutes(20) {
        minutes(5)
    } else if lifetime < minutes(90) {
        minutes(15)
    } else {
        minutes(60)
    }
}

/// The largest share of a credential's lifetime that background refreshes
/// are spread over, and its cap.
const EAGER_SPREAD_SHARE: u32 = 10;
const EAGER_SPREAD_CAP: Duration = Duration::from_secs(300);

/// The advisory and mandatory timeouts of a session, as set (`None`: the
/// defaults, which follow each credential's lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshPolicy {
    advisory: Option<Duration>,
    mandatory: Option<Duration>,
}

impl RefreshPolicy {
    /// A policy that refreshes `advisory` before expiry and makes callers
    /// wait from `mandatory` before expiry; `None` for the default.
    pub fn new(
        advisory: Option<Duration>,
        mandatory: Option<Duration>,
    ) -> Result<Self, ConfigError> {
        if let (Some(advisory), Some(mandatory)) = (advisory, mandatory)
            && mandatory > advisory
        {
            return Err(ConfigError::new(
                "mandatory_timeout",
                format!(
                    "must not exceed advisory_timeout ({} s), got {} s; callers would have to wait before a background refresh is even tried",
                    advisory.as_secs_f64(),
                    mandatory.as_secs_f64()
                ),
            ));
        }
        Ok(Self {
            advisory,
            mandatory,
        })
    }

    /// The advisory timeout as set.
    pub fn advisory(&self) -> Option<Duration> {
        self.advisory
    }

    /// The mandatory timeout as set.
    pub fn mandatory(&self) -> Option<Duration> {
        self.mandatory
    }

    /// The windows of a credential received at `issued_at` that expires at
    /// `expiration` (which must be later).
    pub fn windows(&self, issued_at: OffsetDateTime, expiration: OffsetDateTime) -> Windows {
        let lifetime = saturating::between(issued_at, expiration);
        let advisory_set = self
            .advisory
            .unwrap_or_else(|| default_advisory_timeout(lifetime));
        let mandatory_set = self
            .mandatory
            .unwrap_or(DEFAULT_MANDATORY_TIMEOUT)
            .min(advisory_set);
        let advisory = advisory_set.min(lifetime / 2);
        let mandatory = if advisory < advisory_set {
            // Shrink the mandatory window in the same proportion.
            saturating::scale(
                mandatory_set,
                advisory.as_secs_f64() / advisory_set.as_secs_f64(),
            )
        } else {
            mandatory_set
        };
        Windows {
            issued_at,
            fresh_until: saturating::sub(expiration, advisory),
            mandatory_at: saturating::sub(expiration, mandatory),
            expires_at: expiration,
        }
    }
}

/// Where a point in time falls for one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use it; nothing to do.
    Fresh,
    /// Use it, and start a refresh in the background.
    Advisory,
    /// Still valid, but callers wait for a refresh.
    Mandatory,
    /// Never hand it out.
    Expired,
}

/// The boundaries of one credential's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    issued_at: OffsetDateTime,
    fresh_until: OffsetDateTime,
    mandatory_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl Windows {
    /// The credential's state at `now`.
    pub fn freshness(&self, now: OffsetDateTime) -> Freshness {
        if now < self.fresh_until {
            Freshness::Fresh
        } else if now < self.mandatory_at {
            Freshness::Advisory
        } else if now < self.expires_at {
            Freshness::Mandatory
        } else {
            Freshness::Expired
        }
    }

    /// The end of the fresh window.
    pub fn fresh_until(&self) -> OffsetDateTime {
        self.fresh_until
    }

    /// The start of the mandatory window.
    pub fn mandatory_at(&self) -> OffsetDateTime {
        self.mandatory_at
    }

    /// The expiry.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The length of the advisory window.
    pub fn advisory_len(&self) -> Duration {
        (self.mandatory_at - self.fresh_until)
            .try_into()
            .unwrap_or_default()
    }

    /// When a background refresh should start: around the end of the
    /// fresh window, from a tenth of the lifetime (at most 5 minutes)
    /// before it, never before half the lifetime, to halfway into the
    /// advisory window, spread by `jitter` (in `0.0..1.0`) so that sessions
    /// built together do not refresh together, short-lived ones included.
    pub fn background_refresh_at(&self, jitter: f64) -> OffsetDateTime {
        let lifetime = saturating::between(self.issued_at, self.expires_at);
        let spread = (lifetime / EAGER_SPREAD_SHARE).min(EAGER_SPREAD_CAP);
        let earliest = saturating::add(self.issued_at, lifetime / 2);
        let from = saturating::sub(self.fresh_until, spread).max(earliest);
        let until = saturating::add(self.fresh_until, self.advisory_len() / 2).max(from);
        saturating::add(
            from,
            saturating::scale(saturating::between(from, until), jitter),
        )
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn timeouts_as_set_override_the_table() {
        let policy = RefreshPolicy::new(Some(secs(900)), Some(secs(600))).expect("valid");
        let windows = policy.windows(T0, T0 + secs(3600));
        assert_eq!(windows.fresh_until(), T0 + secs(2700));
        assert_eq!(windows.mandatory_at(), T0 + secs(3000));
        assert_eq!(windows.freshness(T0 + secs(2699)), Freshness::Fresh);
        assert_eq!(windows.freshness(T0 + secs(2700)), Freshness::Advisory);
        assert_eq!(windows.freshness(T0 + secs(3000)), Freshness::Mandatory);
        assert_eq!(windows.freshness(T0 + secs(3600)), Freshness::Expired);
    }

    #[test]
    fn default_windows_follow_each_credentials_lifetime() {
        let policy = RefreshPolicy::default();
        // (lifetime, advisory, mandatory), in seconds.
        for (lifetime, advisory, mandatory) in [
            (900, 300, 60),
            (1200, 300, 60),
            (1800, 900, 60),
            (3600, 900, 60),
            (5399, 900, 60),
            (5400, 2700, 45),
            (7200, 3600, 60),
            (6 * 3600, 3600, 60),
            // Short credentials: half the lifetime, the mandatory window
            // shrunk in proportion.
            (120, 60, 12),
        ] {
            let windows = policy.windows(T0, T0 + secs(lifetime));
            let expires = T0 + secs(lifetime);
            assert_eq!(
                windows.fresh_until(),
                expires - secs(advisory),
                "{lifetime}"
            );
            assert_eq!(
                windows.mandatory_at(),
                expires - secs(mandatory),
                "{lifetime}"
            );
        }
        // A six-hour credential followed by a ten-minute one: 60 then 5.
        let long = policy.windows(T0, T0 + secs(6 * 3600));
        let short = policy.windows(T0, T0 + secs(600));
        assert_eq!(long.advisory_len(), secs(3540));
        assert_eq!(short.fresh_until(), T0 + secs(300));
    }

    proptest::proptest! {
        /// Point 1 of the 2026 behaviour, for any lifetime: the advisory
        /// window from the table (at most half the lifetime), the mandatory
        /// one 60 s or the advisory one if smaller, in proportion.
        #[test]
        fn default_windows_follow_the_table_for_any_lifetime(lifetime in 1u64..48 * 3600) {
            let windows = RefreshPolicy::default().windows(T0, T0 + secs(lifetime));
            let table = default_advisory_timeout(secs(lifetime));
            let advisory = table.min(secs(lifetime) / 2);
            proptest::prop_assert_eq!(windows.fresh_until(), T0 + secs(lifetime) - advisory);
            let mandatory = secs(lifetime) - (windows.mandatory_at() - T0).unsigned_abs();
            let expected = DEFAULT_MANDATORY_TIMEOUT.min(table).mul_f64(advisory.as_secs_f64() / table.as_secs_f64());
            proptest::prop_assert!(mandatory.abs_diff(expected) < Duration::from_millis(1), "{mandatory:?} {expected:?}");
            proptest::prop_assert!(windows.mandatory_at() >= windows.fresh_until());
        }
    }

    #[test]
    fn a_mandatory_timeout_set_alone_never_exceeds_the_advisory_window() {
        let policy = RefreshPolicy::new(None, Some(secs(600))).expect("valid");
        let windows = policy.windows(T0, T0 + secs(900));
        assert_eq!(windows.mandatory_at(), windows.fresh_until());
    }

    #[test]
    fn mandatory_above_advisory_is_refused_naming_the_field() {
        let error = RefreshPolicy::new(Some(secs(60)), Some(secs(120))).unwrap_err();
        assert_eq!(error.field(), "mandatory_timeout");
    }

    #[test]
    fn background_refreshes_spread_after_half_life_and_before_callers_wait() {
        let policy = RefreshPolicy::default();
        for lifetime in [4, 60, 900, 1800, 3600, 6 * 3600] {
            let windows = policy.windows(T0, T0 + secs(lifetime));
            let at = |jitter| windows.background_refresh_at(jitter);
            let half_life = T0 + secs(lifetime / 2);
            assert!(at(0.0) >= half_life, "{lifetime}: after half-life");
            assert!(
                at(0.999) < windows.mandatory_at(),
                "{lifetime}: before callers wait"
            );
            // Sessions built together refresh apart, short ones included.
            assert!(
                at(0.9) - at(0.1) >= secs(lifetime) / 100,
                "{lifetime}: spread"
            );
        }
    }
}
