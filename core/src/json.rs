//! Reading the JSON answers of credential endpoints (IoT, container, IMDS,
//! SSO, `credential_process`): decoding without echoing the body (it holds
//! secrets), timestamps, and the error an HTTP status stands for.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, ErrorCode, ServiceError};

/// A JSON answer from `service`, for error messages.
pub(crate) struct Answer<'a> {
    pub(crate) service: &'static str,
    pub(crate) status: u16,
    pub(crate) body: &'a [u8],
}

impl<'a> Answer<'a> {
    /// The answer in `response`.
    pub(crate) fn of(service: &'static str, response: &'a http::Response<Vec<u8>>) -> Self {
        Self {
            service,
            status: response.status().as_u16(),
            body: response.body(),
        }
    }

    /// The answer on success, or the error its status stands for.
    pub(crate) fn successful(
        service: &'static str,
        response: &'a http::Response<Vec<u8>>,
    ) -> Result<Self, Error> {
        if response.status().is_success() {
            Ok(Self::of(service, response))
        } else {
            Err(service_error(service, response))
        }
    }

    /// Decodes the body as `T`. The error says where the JSON went wrong,
    /// never what it says: a secret may be right there.
    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(self.body).map_err(|e| {
            self.invalid(format!(
                "not {what}: {:?} error at line {}, column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    /// An RFC 3339 timestamp in field `field`.
    pub(crate) fn timestamp(&self, field: &str, text: &str) -> Result<OffsetDateTime, Error> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| self.invalid(format!("{field} `{text}` is not an RFC 3339 time: {e}")))
    }

    /// Checks that the secret-holding `fields` are not empty.
    pub(crate) fn require(&self, fields: &[(&str, &str)]) -> Result<(), Error> {
        match fields.iter().find(|(_, value)| value.is_empty()) {
            Some((name, _)) => Err(self.invalid(format!("{name} is empty"))),
            None => Ok(()),
        }
    }

    /// An answer that could not be read.
    pub(crate) fn invalid(&self, problem: String) -> Error {
        Error::InvalidResponse {
            service: self.service,
            status: self.status,
            problem,
        }
    }
}

/// `at` as the credential formats write times: RFC 3339, UTC, whole
/// seconds (`2026-11-22T12:00:00Z`).
pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let whole = utc.replace_nanosecond(0).unwrap_or(utc);
    // Only years past 9999 do not fit RFC 3339; such an expiry means never.
    whole
        .format(&Rfc3339)
        .unwrap_or_else(|_| "9999-12-31T23:59:59Z".to_owned())
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(alias = "Message")]
    message: Option<String>,
    #[serde(alias = "Code")]
    code: Option<String>,
}

/// The error a non-success answer stands for: the code its body names, or
/// the one its status implies; the message from a `{"message": ..}` body.
pub(crate) fn service_error(service: &'static str, response: &http::Response<Vec<u8>>) -> Error {
    let status = response.status().as_u16();
    let body = serde_json::from_slice::<ErrorBody>(response.body()).ok();
    let message = body
        .as_ref()
        .and_then(|b| b.message.clone())
        .unwrap_or_default();
    let code = match body.and_then(|b| b.code) {
        Some(code) => ErrorCode::parse(&code),
        None => status_code(status),
    };
    let request_id = response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Error::Service(ServiceError::new(
        service, status, code, message, request_id,
    ))
}

fn status_code(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::ValidationError,
        401 | 403 => ErrorCode::AccessDenied,
        404 => ErrorCode::Other("ResourceNotFound".into()),
        429 => ErrorCode::Throttling,
        503 => ErrorCode::ServiceUnavailable,
        500..=599 => ErrorCode::InternalFailure,
        other => ErrorCode::Other(format!("HTTP{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).expect("valid");
        response
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        key: u32,
    }

    #[test]
    fn decode_errors_never_echo_the_body() {
        let answer = response(200, r#"{"key": "wJalrXUtnFEMI"}"#);
        let error = Answer::of("test", &answer)
            .decode::<Shape>("the shape")
            .expect_err("a string is not a number");
        assert!(!error.to_string().contains("wJalr"), "{error}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn statuses_and_bodies_name_the_error() {
        let code = |status, body| match service_error("test", &response(status, body)) {
            Error::Service(e) => (e.code().clone(), e.message().to_owned()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(404, ""),
            (ErrorCode::Other("ResourceNotFound".into()), String::new())
        );
        assert_eq!(
            code(429, r#"{"message":"slow down"}"#),
            (ErrorCode::Throttling, "slow down".into())
        );
        assert_eq!(
            code(
                400,
                r#"{"Code":"InvalidIdentityToken","Message":"bad token"}"#
            ),
            (ErrorCode::parse("InvalidIdentityToken"), "bad token".into())
        );
        assert_eq!(code(502, "<html>").0, ErrorCode::InternalFailure);
    }
}
