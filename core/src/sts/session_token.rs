//! STS `GetSessionToken` with an MFA device: the MFA session. An IAM user's
//! long-term keys and one MFA code buy session credentials that satisfy
//! `aws:MultiFactorAuthPresent` for up to 36 hours, so that the roles they
//! assume need no code of their own.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::query::Form;
use crate::secret::Secret;

use super::{API_VERSION, StsEndpoint, check_serial_number, parse_credentials};

/// The shortest MFA session, and the longest for an IAM user and for the
/// root user, as AWS states them for `DurationSeconds`.
const MIN_SECONDS: u64 = 900;
const MAX_SECONDS: u64 = 129_600;
const MAX_ROOT_SECONDS: u64 = 3_600;

/// The parameters of an STS `GetSessionToken` call with an MFA device.
///
/// ```
/// use std::time::Duration;
/// use refresh_session_core::sts::GetSessionToken;
///
/// let params = GetSessionToken::new("arn:aws:iam::123456789012:mfa/alice")
///     .duration(Duration::from_secs(12 * 3600));
/// assert_eq!(params.serial_number(), "arn:aws:iam::123456789012:mfa/alice");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct GetSessionToken {
    serial_number: String,
    duration: Option<Duration>,
}

impl GetSessionToken {
    /// An MFA session for the device `serial_number` (its ARN, or a
    /// hardware device's serial).
    pub fn new(serial_number: impl Into<String>) -> Self {
        Self {
            serial_number: serial_number.into(),
            duration: None,
        }
    }

    /// `DurationSeconds`: 15 minutes to 36 hours for an IAM user, at most
    /// an hour for the root user (AWS's default is 12 hours). Against a
    /// loopback endpoint any whole number of seconds from 1 is accepted.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// The MFA device.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// Checks the fields against the AWS API reference (`loopback`: the
    /// endpoint is a local test server).
    pub(crate) fn validated(self, loopback: bool) -> Result<Self, ConfigError> {
        check_serial_number(&self.serial_number)?;
        let Some(duration) = self.duration else {
            return Ok(self);
        };
        let max = if self.is_root() {
            MAX_ROOT_SECONDS
        } else {
            MAX_SECONDS
        };
        let seconds = duration.as_secs();
        let in_range = (MIN_SECONDS..=max).contains(&seconds)
            || (loopback && (1..MIN_SECONDS).contains(&seconds));
        if duration.subsec_nanos() != 0 || !in_range {
            let whose = if self.is_root() {
                "for the root user's MFA device, 3600 (1 hour)"
            } else {
                "129600 (36 hours)"
            };
            return Err(ConfigError::new(
                "DurationSeconds",
                format!(
                    "an MFA session lasts whole seconds from 900 (15 minutes) to {whose}, got {} s",
                    duration.as_secs_f64()
                ),
            ));
        }
        Ok(self)
    }

    /// Whether the device is the root user's, whose sessions AWS limits to
    /// an hour.
    fn is_root(&self) -> bool {
        self.serial_number.ends_with(":mfa/root-account-mfa-device")
            || self.serial_number.ends_with(":root")
    }

    fn form(&self, token_code: &Secret) -> String {
        let mut form = Form::new("GetSessionToken", API_VERSION);
        if let Some(duration) = self.duration {
            form.push("DurationSeconds", &duration.as_secs().to_string());
        }
        form.push("SerialNumber", &self.serial_number);
        form.push("TokenCode", token_code.expose());
        form.finish()
    }
}

impl fmt::Debug for GetSessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetSessionToken")
            .field("serial_number", &self.serial_number)
            .field("duration", &self.duration)
            .finish()
    }
}

/// A signed `GetSessionToken` request. AWS takes it signed with an IAM
/// user's long-term keys only: temporary `signer`s are refused here, with
/// what to do, instead of by AWS with `InvalidClientTokenId`.
pub(crate) fn session_token_request(
    params: &GetSessionToken,
    token_code: &Secret,
    signer: &Credentials,
    endpoint: &StsEndpoint,
    now: OffsetDateTime,
) -> Result<http::Request<Vec<u8>>, Error> {
    if signer.session_token().is_some() {
        return Err(ConfigError::new(
            "mfa_session",
            "GetSessionToken needs an IAM user's long-term access keys, and the source credentials are temporary (they carry a session token): give the MFA session the user's keys",
        )
        .into());
    }
    endpoint.post(params.form(token_code), signer, now)
}

/// Reads a `GetSessionToken` answer: the MFA session's credentials.
pub fn parse_session_token(response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
    parse_credentials(response, "GetSessionTokenResponse")
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::harness::session_token_response;

    const USER: &str = "arn:aws:iam::123456789012:mfa/alice";
    const ROOT: &str = "arn:aws:iam::123456789012:mfa/root-account-mfa-device";

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    #[test]
    fn durations_are_aws_limits() {
        let valid = |serial: &str, d: Duration, loopback| {
            GetSessionToken::new(serial)
                .duration(d)
                .validated(loopback)
                .map_err(|e| e.field())
        };
        assert!(valid(USER, hours(36), false).is_ok());
        assert_eq!(valid(USER, hours(37), false), Err("DurationSeconds"));
        assert_eq!(
            valid(USER, Duration::from_secs(899), false),
            Err("DurationSeconds")
        );
        assert!(valid(USER, Duration::from_secs(5), true).is_ok());
        assert!(valid(ROOT, hours(1), false).is_ok());
        assert_eq!(valid(ROOT, hours(2), false), Err("DurationSeconds"));
        assert_eq!(valid("short", hours(1), false), Err("SerialNumber"));
    }

    #[test]
    fn the_request_carries_device_code_and_duration_and_needs_long_term_keys() {
        let endpoint = StsEndpoint::resolve("us-east-1", None).expect("endpoint");
        let now = datetime!(2026-12-04 10:00 UTC);
        let params = GetSessionToken::new(USER).duration(hours(12));
        let code = Secret::new("123456");
        let keys = Credentials::new("AKIAALICE", "secret", None, None);
        let request = session_token_request(&params, &code, &keys, &endpoint, now).expect("signed");
        let body = String::from_utf8(request.body().clone()).expect("utf-8");
        assert!(
            body.starts_with("Action=GetSessionToken&Version=2011-06-15"),
            "{body}"
        );
        assert!(body.contains("DurationSeconds=43200"));
        assert!(body.contains("SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Falice"));
        assert!(body.ends_with("TokenCode=123456"));
        let temporary = Credentials::new("ASIATEMP", "secret", Some("token".into()), None);
        let error = session_token_request(&params, &code, &temporary, &endpoint, now).unwrap_err();
        assert!(
            error.to_string().contains("long-term access keys"),
            "{error}"
        );
    }

    #[test]
    fn answers_are_read() {
        let issued = Credentials::new(
            "ASIAMFA",
            "secret",
            Some("token".into()),
            Some(datetime!(2026-12-05 10:00 UTC)),
        );
        let read = parse_session_token(&session_token_response(&issued)).expect("parsed");
        assert_eq!(read.access_key_id(), "ASIAMFA");
        assert_eq!(read.expiration(), issued.expiration());
        let refused = crate::harness::error_response(403, "AccessDenied", "MFA failed");
        assert!(matches!(
            parse_session_token(&refused),
            Err(Error::Service(_))
        ));
    }
}
