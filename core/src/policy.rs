//! When a credential is fresh, when it should be refreshed, and when callers
//! must wait for a refresh.
//!
//! A credential that expires at `E` is *fresh* before `E - A`, in the
//! *advisory* window until `E - M`, in the *mandatory* window until `E`, and
//! expired after. `A` and `M` are the advisory and mandatory timeouts,
//! clamped against the credential's lifetime: `A` is at most half the
//! lifetime (and `M` shrinks in proportion), so a short-lived credential is
//! used for at least half its life instead of being refreshed on every call.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::ConfigError;
use crate::saturating;

/// The advisory timeout unless set: botocore's 15 minutes.
pub const DEFAULT_ADVISORY_TIMEOUT: Duration = Duration::from_secs(900);
/// The mandatory timeout unless set: botocore's 10 minutes.
pub const DEFAULT_MANDATORY_TIMEOUT: Duration = Duration::from_secs(600);

/// The largest share of a credential's lifetime that background refreshes
/// are spread over, and its cap.
const EAGER_SPREAD_SHARE: u32 = 10;
const EAGER_SPREAD_CAP: Duration = Duration::from_secs(300);

/// The advisory and mandatory timeouts of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    advisory: Duration,
    mandatory: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            advisory: DEFAULT_ADVISORY_TIMEOUT,
            mandatory: DEFAULT_MANDATORY_TIMEOUT,
        }
    }
}

impl RefreshPolicy {
    /// A policy that refreshes `advisory` before expiry and makes callers
    /// wait from `mandatory` before expiry.
    pub fn new(advisory: Duration, mandatory: Duration) -> Result<Self, ConfigError> {
        if mandatory > advisory {
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
    pub fn advisory(&self) -> Duration {
        self.advisory
    }

    /// The mandatory timeout as set.
    pub fn mandatory(&self) -> Duration {
        self.mandatory
    }

    /// The windows of a credential received at `issued_at` that expires at
    /// `expiration` (which must be later).
    pub fn windows(&self, issued_at: OffsetDateTime, expiration: OffsetDateTime) -> Windows {
        let lifetime = saturating::between(issued_at, expiration);
        let advisory = self.advisory.min(lifetime / 2);
        let mandatory = if advisory < self.advisory {
            // Shrink the mandatory window in the same proportion.
            saturating::scale(
                self.mandatory,
                advisory.as_secs_f64() / self.advisory.as_secs_f64(),
            )
        } else {
            self.mandatory
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

    /// When a background refresh should start: shortly before the fresh
    /// window ends, spread by `jitter` (in `0.0..1.0`) so that many sessions
    /// do not refresh at once, and never before half the lifetime.
    pub fn background_refresh_at(&self, jitter: f64) -> OffsetDateTime {
        let lifetime: Duration = (self.expires_at - self.issued_at)
            .try_into()
            .unwrap_or_default();
        let spread = (lifetime / EAGER_SPREAD_SHARE).min(EAGER_SPREAD_CAP);
        let earliest = saturating::add(self.issued_at, lifetime / 2);
        saturating::sub(self.fresh_until, saturating::scale(spread, jitter)).max(earliest)
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
    fn one_hour_credential_uses_the_timeouts_as_set() {
        let windows = RefreshPolicy::default().windows(T0, T0 + secs(3600));
        assert_eq!(windows.fresh_until(), T0 + secs(2700));
        assert_eq!(windows.mandatory_at(), T0 + secs(3000));
        assert_eq!(windows.freshness(T0 + secs(2699)), Freshness::Fresh);
        assert_eq!(windows.freshness(T0 + secs(2700)), Freshness::Advisory);
        assert_eq!(windows.freshness(T0 + secs(3000)), Freshness::Mandatory);
        assert_eq!(windows.freshness(T0 + secs(3600)), Freshness::Expired);
    }

    #[test]
    fn fifteen_minute_credential_is_used_for_half_its_life() {
        // botocore refreshes such a credential on every call; we must not.
        let windows = RefreshPolicy::default().windows(T0, T0 + secs(900));
        assert_eq!(windows.fresh_until(), T0 + secs(450));
        assert_eq!(windows.mandatory_at(), T0 + secs(600));
    }

    #[test]
    fn mandatory_above_advisory_is_refused_naming_the_field() {
        let error = RefreshPolicy::new(secs(60), secs(120)).unwrap_err();
        assert_eq!(error.field(), "mandatory_timeout");
    }

    #[test]
    fn background_refresh_stays_within_the_fresh_window_and_after_half_life() {
        let windows = RefreshPolicy::default().windows(T0, T0 + secs(3600));
        assert_eq!(windows.background_refresh_at(0.0), T0 + secs(2700));
        assert_eq!(windows.background_refresh_at(1.0), T0 + secs(2400));
        let short = RefreshPolicy::default().windows(T0, T0 + secs(4));
        assert_eq!(short.background_refresh_at(1.0), T0 + secs(2));
    }
}
