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
    /// sent at local time `sent`; returns whether the estimate changed.
    pub(crate) fn observe(
        &mut self,
        now: OffsetDateTime,
        sent: OffsetDateTime,
        response: &http::Response<Vec<u8>>,
    ) -> bool {
        let Some(date) = response
            .headers()
            .get(http::header::DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date)
        else {
            return false;
        };
        let round_trip = (now - sent).max(Duration::ZERO);
        let latest = date + DATE_RESOLUTION + round_trip;
        let estimate = now + self.offset;
        if (date..=latest).contains(&estimate) {
            return false;
        }
        self.offset = latest - now;
        tracing::warn!(
            target: "refresh_session",
            skew_seconds = self.offset.whole_seconds(),
            "the local clock differs from AWS's; correcting for it"
        );
        true
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
        assert!(!skew.observe(now, now, &dated("Sun, 22 Nov 2026 12:52:32 GMT")));
        // A slow answer widens the interval.
        let later = datetime!(2026-11-22 12:52:35 UTC);
        assert!(!skew.observe(
            later,
            later - Duration::seconds(3),
            &dated("Sun, 22 Nov 2026 12:52:32 GMT")
        ));
        assert_eq!(skew.offset(), Duration::ZERO);
    }

    #[test]
    fn a_wrong_clock_is_corrected_to_the_late_end() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 13:12:32.5 UTC);
        assert!(skew.observe(now, now, &dated("Sun, 22 Nov 2026 12:52:32 GMT")));
        // AWS's time is 12:52:32 to 12:52:33: the estimate is the latter.
        assert_eq!(
            skew.offset(),
            Duration::seconds(-1200) + Duration::milliseconds(500)
        );
        // Later answers that agree leave it alone.
        let later = now + Duration::seconds(10);
        assert!(!skew.observe(later, later, &dated("Sun, 22 Nov 2026 12:52:42 GMT")));
        // The local clock was fixed: the estimate follows.
        let fixed = datetime!(2026-11-22 12:53:00.2 UTC);
        assert!(skew.observe(fixed, fixed, &dated("Sun, 22 Nov 2026 12:53:00 GMT")));
        assert_eq!(skew.offset(), Duration::milliseconds(800));
    }

    #[test]
    fn answers_without_a_usable_date_teach_nothing() {
        let mut skew = ClockSkew::default();
        let now = datetime!(2026-11-22 13:12:32 UTC);
        assert!(!skew.observe(now, now, &http::Response::new(Vec::new())));
        assert!(!skew.observe(now, now, &dated("not a date")));
        assert_eq!(skew.offset(), Duration::ZERO);
    }
}
