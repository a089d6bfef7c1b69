//! Answers in which an AWS service refuses the credentials a request was
//! signed with because they are stale, and which credential signed it.
//!
//! An SDK client that gets such an answer can retry with other
//! credentials: [`Engine::credentials_rejected`] decides whether there are
//! any (the session's credential has changed since, or the rejected one is
//! dropped so that the retry waits for a refresh).
//!
//! [`Engine::credentials_rejected`]: crate::engine::Engine::credentials_rejected

use serde::Deserialize;

use crate::xml::Document;

/// Why a service refused a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The credential has expired (`ExpiredToken`, `ExpiredTokenException`)
    /// or the signed request is too old (`RequestExpired`): credentials
    /// issued later would pass.
    Expired,
    /// The access key is unknown (`InvalidClientTokenId`). Newer
    /// credentials may pass if the session has moved on since signing; the
    /// session's current one is not stale for it.
    UnknownKey,
}

/// Credentials a service refused, and why: what a session tells the
/// source session whose credentials signed its STS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The refused credentials' access key id.
    pub access_key_id: String,
    /// Why they were refused.
    pub rejection: Rejection,
}

impl Rejection {
    /// The rejection an AWS error code stands for, if it is one.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => Some(Self::Expired),
            "InvalidClientTokenId" => Some(Self::UnknownKey),
            _ => None,
        }
    }

    /// The rejection a service's refusal stands for, if `error` is one.
    pub fn of(error: &crate::Error) -> Option<Self> {
        match error {
            crate::Error::Service(refusal) => Self::from_code(refusal.code().as_str()),
            _ => None,
        }
    }

    /// The rejection in an error answer of any AWS protocol: the
    /// `x-amzn-ErrorType` header (JSON protocols), a JSON `__type` or
    /// `code`, or an XML `<Code>` (query and REST-XML protocols, S3).
    /// Successful answers are never rejections.
    pub fn from_response(status: u16, error_type: Option<&str>, body: &[u8]) -> Option<Self> {
        if !(400..500).contains(&status) {
            return None;
        }
        error_code(error_type, body).and_then(|code| Self::from_code(&code))
    }
}

/// The error code of an AWS error answer.
fn error_code(error_type: Option<&str>, body: &[u8]) -> Option<String> {
    let from_header = error_type.map(str::to_owned);
    from_header
        .or_else(|| json_code(body))
        .or_else(|| Document::parse(body).ok()?.find("Code").map(str::to_owned))
        .map(|code| bare_code(&code).to_owned())
}

fn json_code(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct JsonError {
        #[serde(rename = "__type", alias = "code", alias = "Code")]
        code: String,
    }
    serde_json::from_slice::<JsonError>(body)
        .ok()
        .map(|e| e.code)
}

/// `ExpiredTokenException` from `com.amazonaws.sts#ExpiredTokenException`
/// or `ExpiredTokenException:http://internal.amazon.com/...`.
fn bare_code(code: &str) -> &str {
    let code = code.rsplit_once('#').map_or(code, |(_, tail)| tail);
    code.split_once(':').map_or(code, |(head, _)| head).trim()
}

/// The access key id a SigV4 `Authorization` header names
/// (`AWS4-HMAC-SHA256 Credential=ASIA.../20260101/us-east-1/s3/aws4_request, ...`).
pub fn signer_access_key_id(authorization: &str) -> Option<&str> {
    let scope = authorization.split("Credential=").nth(1)?;
    let key = scope.split('/').next()?.trim();
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_and_s3_xml_errors_are_read() {
        let sts = b"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error><RequestId>x</RequestId></ErrorResponse>";
        assert_eq!(
            Rejection::from_response(403, None, sts),
            Some(Rejection::Expired)
        );
        let s3 = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidClientTokenId</Code><Message>no</Message></Error>";
        assert_eq!(
            Rejection::from_response(403, None, s3),
            Some(Rejection::UnknownKey)
        );
    }

    #[test]
    fn json_errors_are_read_from_header_or_body() {
        let header =
            "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/";
        assert_eq!(
            Rejection::from_response(400, Some(header), b"{}"),
            Some(Rejection::Expired)
        );
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ExpiredTokenException","message":"expired"}"#;
        assert_eq!(
            Rejection::from_response(400, None, body),
            Some(Rejection::Expired)
        );
        assert_eq!(
            Rejection::from_response(403, None, br#"{"code":"RequestExpired"}"#),
            Some(Rejection::Expired)
        );
    }

    #[test]
    fn a_service_refusal_is_read_from_the_error() {
        let refusal = |code: &str| {
            crate::Error::Service(crate::error::ServiceError::new(
                "STS",
                403,
                crate::error::ErrorCode::parse(code),
                "",
                None,
            ))
        };
        assert_eq!(
            Rejection::of(&refusal("ExpiredToken")),
            Some(Rejection::Expired)
        );
        assert_eq!(
            Rejection::of(&refusal("InvalidClientTokenId")),
            Some(Rejection::UnknownKey)
        );
        assert_eq!(Rejection::of(&refusal("AccessDenied")), None);
        assert_eq!(Rejection::of(&crate::Error::Signing("x".into())), None);
    }

    #[test]
    fn other_errors_and_successes_are_not_rejections() {
        let denied = b"<Error><Code>AccessDenied</Code></Error>";
        assert_eq!(Rejection::from_response(403, None, denied), None);
        let expired = b"<Error><Code>ExpiredToken</Code></Error>";
        assert_eq!(Rejection::from_response(200, None, expired), None);
        assert_eq!(Rejection::from_response(500, None, expired), None);
        assert_eq!(Rejection::from_response(403, None, b"not an answer"), None);
    }

    #[test]
    fn the_signer_is_read_from_the_authorization_header() {
        let header = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(signer_access_key_id(header), Some("ASIAEXAMPLE"));
        assert_eq!(signer_access_key_id("Bearer token"), None);
        assert_eq!(signer_access_key_id("AWS4-HMAC-SHA256 Credential=/x"), None);
    }
}
