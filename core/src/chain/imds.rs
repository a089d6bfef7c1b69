//! IMDSv2, the EC2 instance metadata service: a session token (`PUT
//! /latest/api/token`), the instance's role (`GET
//! /latest/meta-data/iam/security-credentials/`), then its credentials.
//! The token is kept for the next refresh until its time to live runs out
//! or the service refuses it.

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::json;
use crate::saturating;
use crate::secret::Secret;

use super::{ChainError, SourceKind};

/// How errors name the service.
const SERVICE: &str = "IMDS";
const IPV4_ENDPOINT: &str = "http://169.254.169.254";
const IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";
/// The token lifetime asked for, as the AWS SDKs ask.
const TOKEN_TTL: Duration = Duration::from_secs(21_600);
/// A token is not used this close to its end.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
const TOKEN_PATH: &str = "/latest/api/token";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";

/// The instance metadata service at an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Imds {
    endpoint: String,
}

/// An IMDSv2 session token.
#[derive(Debug, Clone)]
pub(crate) struct ImdsToken {
    value: Secret,
    expires: OffsetDateTime,
}

impl ImdsToken {
    /// Whether it is still good at `now`.
    pub(crate) fn is_valid(&self, now: OffsetDateTime) -> bool {
        saturating::add(now, TOKEN_MARGIN) < self.expires
    }
}

impl Imds {
    /// The service as the environment configures it; `None` when
    /// `AWS_EC2_METADATA_DISABLED` is true.
    pub(crate) fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let endpoint = match env("AWS_EC2_METADATA_SERVICE_ENDPOINT").filter(|v| !v.is_empty()) {
            Some(url) => {
                let uri: http::Uri = url.parse().map_err(|e| {
                    ConfigError::new(
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        format!("`{url}` is not a URL: {e}"),
                    )
                })?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(ConfigError::new(
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                        format!("`{url}` is not an http(s) URL"),
                    ));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => match env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").as_deref() {
                Some(mode) if mode.eq_ignore_ascii_case("ipv6") => IPV6_ENDPOINT.to_owned(),
                None | Some("") => IPV4_ENDPOINT.to_owned(),
                Some(mode) if mode.eq_ignore_ascii_case("ipv4") => IPV4_ENDPOINT.to_owned(),
                Some(mode) => {
                    return Err(ConfigError::new(
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                        format!("`{mode}` is neither IPv4 nor IPv6"),
                    ));
                }
            },
        };
        Ok(Some(Self { endpoint }))
    }

    /// The endpoint, for messages.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `PUT /latest/api/token`.
    pub(crate) fn token_request(&self) -> http::Request<Vec<u8>> {
        build(
            http::Request::put(format!("{}{TOKEN_PATH}", self.endpoint))
                .header(TOKEN_TTL_HEADER, TOKEN_TTL.as_secs()),
        )
    }

    /// `GET` the name of the instance's role.
    pub(crate) fn role_request(&self, token: &ImdsToken) -> http::Request<Vec<u8>> {
        build(
            http::Request::get(format!("{}{ROLE_PATH}", self.endpoint))
                .header(TOKEN_HEADER, token.value.expose()),
        )
    }

    /// `GET` the credentials of `role`.
    pub(crate) fn credentials_request(
        &self,
        token: &ImdsToken,
        role: &str,
    ) -> http::Request<Vec<u8>> {
        build(
            http::Request::get(format!("{}{ROLE_PATH}{role}", self.endpoint))
                .header(TOKEN_HEADER, token.value.expose()),
        )
    }
}

/// A request from parts this module made; a token or role name that cannot
/// be a header or a path gives an empty request the service will refuse.
fn build(builder: http::request::Builder) -> http::Request<Vec<u8>> {
    builder.body(Vec::new()).unwrap_or_default()
}

/// Whether the service refused the token (it expired, or the instance was
/// restarted): get a new one and ask again.
pub(crate) fn token_refused(response: &http::Response<Vec<u8>>) -> bool {
    response.status() == http::StatusCode::UNAUTHORIZED
}

/// The token in an answer to [`Imds::token_request`], good until its time
/// to live (as the answer states it) from `now`.
pub(crate) fn parse_token(
    response: &http::Response<Vec<u8>>,
    now: OffsetDateTime,
) -> Result<ImdsToken, Error> {
    let answer = json::Answer::successful(SERVICE, response)?;
    let value = std::str::from_utf8(response.body())
        .map(str::trim)
        .ok()
        .filter(|t| !t.is_empty() && http::HeaderValue::from_str(t).is_ok())
        .ok_or_else(|| answer.invalid("the token is empty or not header text".into()))?;
    let ttl = response
        .headers()
        .get(TOKEN_TTL_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map_or(TOKEN_TTL, Duration::from_secs);
    Ok(ImdsToken {
        value: Secret::new(value),
        expires: saturating::add(now, ttl),
    })
}

/// The role name in an answer to [`Imds::role_request`].
pub(crate) fn parse_role(response: &http::Response<Vec<u8>>) -> Result<String, Error> {
    if response.status() == http::StatusCode::NOT_FOUND {
        return Err(no_role());
    }
    let answer = json::Answer::successful(SERVICE, response)?;
    let role = std::str::from_utf8(response.body())
        .ok()
        .and_then(|text| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .ok_or_else(no_role)?;
    if role.contains(['/', '?', '#', ' ']) {
        return Err(answer.invalid(format!("`{role}` is not a role name")));
    }
    Ok(role.to_owned())
}

fn no_role() -> Error {
    Error::Chain(ChainError::Failed {
        kind: SourceKind::Imds,
        problem: "no IAM role is attached to this instance (attach an instance profile)".into(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    code: String,
    access_key_id: String,
    secret_access_key: String,
    token: String,
    expiration: String,
}

/// The credentials in an answer to [`Imds::credentials_request`].
pub(crate) fn parse_credentials(response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
    if response.status() == http::StatusCode::NOT_FOUND {
        return Err(no_role());
    }
    let answer = json::Answer::successful(SERVICE, response)?;
    let credentials: Answer = answer.decode("the instance credentials JSON")?;
    if credentials.code != "Success" {
        return Err(answer.invalid(format!("Code is `{}`, not Success", credentials.code)));
    }
    answer.require(&[
        ("AccessKeyId", &credentials.access_key_id),
        ("SecretAccessKey", &credentials.secret_access_key),
        ("Token", &credentials.token),
    ])?;
    let expiration = answer.timestamp("Expiration", &credentials.expiration)?;
    Ok(Credentials::new(
        credentials.access_key_id,
        Secret::new(credentials.secret_access_key),
        Some(Secret::new(credentials.token)),
        Some(expiration),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use time::macros::datetime;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Option<Imds>, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Imds::from_env(&move |key: &str| map.get(key).cloned())
    }

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).expect("valid");
        response
    }

    #[test]
    fn endpoints_from_the_environment() {
        assert_eq!(
            from(&[]).expect("valid").expect("on").endpoint(),
            IPV4_ENDPOINT
        );
        let v6 = from(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")]).expect("valid");
        assert_eq!(v6.expect("on").endpoint(), IPV6_ENDPOINT);
        let local = from(&[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://127.0.0.1:1338/",
        )]);
        assert_eq!(
            local.expect("valid").expect("on").endpoint(),
            "http://127.0.0.1:1338"
        );
        assert_eq!(
            from(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]).expect("valid"),
            None
        );
        let error = from(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5")]).expect_err("bad");
        assert_eq!(error.field(), "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    }

    #[test]
    fn the_three_requests_and_their_answers() {
        let imds = from(&[]).expect("valid").expect("on");
        let put = imds.token_request();
        assert_eq!(put.method(), http::Method::PUT);
        assert_eq!(put.headers()[TOKEN_TTL_HEADER], "21600");
        let now = datetime!(2026-11-22 12:00 UTC);
        let mut answer = response(200, "AQAEAtoken==");
        answer
            .headers_mut()
            .insert(TOKEN_TTL_HEADER, http::HeaderValue::from_static("120"));
        let token = parse_token(&answer, now).expect("a token");
        assert!(token.is_valid(now + Duration::from_secs(30)));
        assert!(!token.is_valid(now + Duration::from_secs(61)), "the margin");
        let get = imds.role_request(&token);
        assert_eq!(get.headers()[TOKEN_HEADER], "AQAEAtoken==");
        assert_eq!(
            parse_role(&response(200, "web-role\n")).expect("a role"),
            "web-role"
        );
        let get = imds.credentials_request(&token, "web-role");
        assert_eq!(
            get.uri().path(),
            "/latest/meta-data/iam/security-credentials/web-role"
        );
        let credentials = parse_credentials(&response(
            200,
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z","LastUpdated":"2026-11-22T12:00:00Z"}"#,
        ))
        .expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIA");
    }

    #[test]
    fn no_role_and_refused_tokens() {
        for error in [
            parse_role(&response(404, "")).expect_err("no role"),
            parse_role(&response(200, "\n")).expect_err("no role"),
            parse_credentials(&response(404, "")).expect_err("no role"),
        ] {
            assert!(error.to_string().contains("no IAM role"), "{error}");
        }
        assert!(token_refused(&response(401, "")));
        let error = parse_credentials(&response(
            200,
            r#"{"Code":"AssumeRoleUnauthorizedAccess","AccessKeyId":"","SecretAccessKey":"","Token":"","Expiration":""}"#,
        ))
        .expect_err("not a success");
        assert!(
            error.to_string().contains("AssumeRoleUnauthorizedAccess"),
            "{error}"
        );
    }
}
