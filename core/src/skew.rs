//! Clock skew: how far this machine's clock is from AWS's, learned from the
//! `Date` header of every answer. The engine adds it to the time it is
//! given before it signs a request or judges an expiry, so a device whose
//! clock is twenty minutes off still signs requests AWS accepts and still
//! knows when its credentials expire.
//!
//! A `Date` header has one-second resolution and was stamped before the
//! answer travelled back, so at the moment the answer arrives AWS's time
//! lies in `[Date, Date + 1 s + round trip]`. The estimate is kept while it
//! falls in that interval and otherwise moved to the interval's end: the
//! late end, so that expiry is judged early rather than late.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// RFC 9110's IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// The resolution of a `Date` header.
const DATE_RESOLUTION: Duration = Duration::SECOND;

/// A larger difference is a broken `Date` header (a proxy, a test server,
/// the end of time), not a clock to correct for.
pub(crate) const PLAUSIBLE_SKEW: Duration = Duration::DAY;

/// The offset to add to the local clock to get AWS's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClockSkew {
    offset: Duration,
}

impl ClockSkew {
    /// The offset (AWS's time minus the local time).
    pub(crate) fn offset(&self) -> Duration {
        self.offset
    }

    /// Learns from `response`, received at local time `now` for a request
    /// sent at local time `sent`; returns whether the estimate changed. A
    /// `Date` more than [`PLAUSIBLE_SKEW`] from the local clock is an error
    /// that names it, and is never applied.
    pub(crate) fn observe(
        &mut self,
        now: OffsetDateTime,
        sent: OffsetDateTime,
        response: &http::Response<Vec<u8>>,
    ) -> Result<bool, ImplausibleDate> {
        let Some(date) = response
            .headers()
            .get(http::header::DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date)
        else {
            return Ok(false);
        };
        if (date - now).abs() > PLAUSIBLE_SKEW {
            return Err(ImplausibleDate { date, now });
        }
        let round_trip = (now - sent).clamp(Duration::ZERO, PLAUSIBLE_SKEW);
        let latest = date.saturating_add(DATE_RESOLUTION + round_trip);
        let estimate = now.saturating_add(self.offset);
        if (date..=latest).contains(&estimate) {
            return Ok(false);
        }
        self.offset = latest - now;
        tracing::warn!(
            target: "refresh_session",
            skew_seconds = self.offset.whole_seconds(),
            "the local clock differs from AWS's; correcting for it"
        );
        Ok(true)
    }
}

/// An answer's `Date` header that is too far from the local clock to be a
/// clock to correct for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImplausibleDate {
    date: OffsetDateTime,
    now: OffsetDateTime,
}

impl ImplausibleDate {
    /// What is wrong, for [`Error::InvalidResponse`](crate::Error).
    pub(crate) fn problem(&self) -> String {
        format!(
            "its Date header ({}) is more than a day from the local clock ({}); check the server and the clock",
            self.date, self.now
        )
    }
}

/// Parses an HTTP `Date` header value.
fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, IMF_FIXDATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn dated(date: &str) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(Vec::new());
        response.headers_mut().insert(
            http::header::DATE,
            http::HeaderValue::from_str(date).expect("ascii"),
        );
        response
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            parse_http_date("Sun, 22 Nov 2026 12:52:32 GMT"),
            Some(datetime!(2026-11-22 12:52:32 UTC))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn a_clock_that_agrees_within_the_headers_precision_is_left_alone() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 12:52:32.9 UTC);
        assert_eq!(
            Ok(false),
            skew.observe(now, now, &dated("Sun, 22 Nov 2026 12:52:32 GMT"))
        );
        // A slow answer widens the interval.
        let later = datetime!(2026-11-22 12:52:35 UTC);
        assert_eq!(
            Ok(false),
            skew.observe(
                later,
                later - Duration::seconds(3),
                &dated("Sun, 22 Nov 2026 12:52:32 GMT")
            )
        );
        assert_eq!(skew.offset(), Duration::ZERO);
    }

    #[test]
    fn a_wrong_clock_is_corrected_to_the_late_end() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 13:12:32.5 UTC);
        assert_eq!(
            Ok(true),
            skew.observe(now, now, &dated("Sun, 22 Nov 2026 12:52:32 GMT"))
        );
        // AWS's time is 12:52:32 to 12:52:33: the estimate is the latter.
        assert_eq!(
            skew.offset(),
            Duration::seconds(-1200) + Duration::milliseconds(500)
        );
        // Later answers that agree leave it alone.
        let later = now + Duration::seconds(10);
        assert_eq!(
            Ok(false),
            skew.observe(later, later, &dated("Sun, 22 Nov 2026 12:52:42 GMT"))
        );
        // The local clock was fixed: the estimate follows.
        let fixed = datetime!(2026-11-22 12:53:00.2 UTC);
        assert_eq!(
            Ok(true),
            skew.observe(fixed, fixed, &dated("Sun, 22 Nov 2026 12:53:00 GMT"))
        );
        assert_eq!(skew.offset(), Duration::milliseconds(800));
    }

    #[test]
    fn a_date_from_the_end_of_time_is_an_error_and_not_applied() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 13:12:32 UTC);
        for date in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Mon, 23 Nov 2026 13:12:34 GMT",
        ] {
            let error = skew.observe(now, now, &dated(date));
            assert!(error.is_err(), "{date}: {error:?}");
        }
        assert_eq!(skew.offset(), Duration::ZERO);
        let ends = [
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
            now,
        ];
        assert!(
            skew.observe(ends[0], now, &dated("Sun, 22 Nov 2026 13:12:32 GMT"))
                .is_err()
        );
        assert_eq!(
            Ok(false),
            skew.observe(ends[1], ends[0], &dated("Sun, 22 Nov 2026 13:12:32 GMT"))
        );
    }

    #[test]
    fn answers_without_a_usable_date_teach_nothing() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 13:12:32 UTC);
        assert_eq!(
            Ok(false),
            skew.observe(now, now, &http::Response::new(Vec::new()))
        );
        assert_eq!(Ok(false), skew.observe(now, now, &dated("not a date")));
        assert_eq!(skew.offset(), Duration::ZERO);
    }
}
