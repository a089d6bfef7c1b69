//! Container credentials (ECS task roles, EKS Pod Identity): `GET` the URL
//! the environment names, with its authorization token, for JSON
//! credentials.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::json;
use crate::saturating;
use crate::secret::Secret;

/// How errors name the service.
const SERVICE: &str = "container credentials endpoint";
/// Where `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative to.
const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// Hosts plain `http` may reach besides loopback: the ECS and EKS agents.
const AGENT_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];

/// Where the authorization token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Value(Secret),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read on every refresh
    /// (EKS rotates it).
    File(String),
}

/// A container credential endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Container {
    uri: http::Uri,
    pub(crate) token: Option<Token>,
}

impl Container {
    /// The endpoint the environment names, if any; a full URI that may not
    /// be used is an error.
    pub(crate) fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let uri = if let Some(relative) = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            format!("{ECS_ENDPOINT}{relative}")
                .parse::<http::Uri>()
                .map_err(|e| {
                    ConfigError::new(
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                        format!("`{relative}` is not a path: {e}"),
                    )
                })?
        } else if let Some(full) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            full_uri(&full)?
        } else {
            return Ok(None);
        };
        let token = var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .map(Token::File)
            .or_else(|| {
                var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(|t| Token::Value(Secret::new(t)))
            });
        Ok(Some(Self { uri, token }))
    }

    /// The endpoint, for messages.
    pub(crate) fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// `GET <uri>` with `Authorization: <token>`.
    pub(crate) fn request(&self, token: Option<&Secret>) -> Result<http::Request<Vec<u8>>, Error> {
        let mut request = http::Request::get(self.uri.clone()).header("accept", "application/json");
        if let Some(token) = token {
            let value = http::HeaderValue::from_str(token.expose().trim()).map_err(|_| {
                Error::Chain(super::ChainError::Failed {
                    kind: super::SourceKind::Container,
                    problem: "the authorization token holds characters an HTTP header cannot"
                        .into(),
                })
            })?;
            request = request.header(http::header::AUTHORIZATION, value);
        }
        request
            .body(Vec::new())
            .map_err(|e| Error::Signing(format!("the container request could not be built: {e}")))
    }
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: any `https` URL, or `http` to
/// loopback or a container agent only, since the answer holds credentials.
fn full_uri(text: &str) -> Result<http::Uri, ConfigError> {
    let invalid = |problem: String| ConfigError::new("AWS_CONTAINER_CREDENTIALS_FULL_URI", problem);
    let uri: http::Uri = text
        .parse()
        .map_err(|e| invalid(format!("`{text}` is not a URL: {e}")))?;
    let host = uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if is_local(bare) => Ok(uri),
        Some("http") => Err(invalid(format!(
            "`{text}` is plain http to {host}; use https, or http to loopback or the container agent"
        ))),
        _ => Err(invalid(format!("`{text}` is not an http(s) URL"))),
    }
}

fn is_local(host: &str) -> bool {
    crate::sts::is_loopback(host)
        || AGENT_HOSTS.contains(&host)
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

/// `credentials` as a container credential endpoint answers
/// (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`): what a local
/// endpoint serves to SDKs given its URL in
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`. The SDKs require an expiry; for
/// credentials without one it is `now` plus an hour, when they ask again.
pub fn render(credentials: &Credentials, now: OffsetDateTime) -> Secret {
    let expiration = credentials
        .expiration()
        .unwrap_or(saturating::add(now, Duration::from_secs(3600)));
    let mut json = serde_json::json!({
        "AccessKeyId": credentials.access_key_id(),
        "SecretAccessKey": credentials.secret_access_key().expose(),
        "Expiration": json::timestamp(expiration),
    });
    if let Some(token) = credentials.session_token() {
        json["Token"] = token.expose().into();
    }
    Secret::new(json.to_string())
}

/// The credentials in the endpoint's answer.
pub(crate) fn parse(response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
    let answer = json::Answer::successful(SERVICE, response)?;
    let credentials: Answer = answer.decode("the container credentials JSON")?;
    answer.require(&[
        ("AccessKeyId", &credentials.access_key_id),
        ("SecretAccessKey", &credentials.secret_access_key),
    ])?;
    let expiration = credentials
        .expiration
        .map(|text| answer.timestamp("Expiration", &text))
        .transpose()?;
    Ok(Credentials::new(
        credentials.access_key_id,
        Secret::new(credentials.secret_access_key),
        credentials.token.filter(|t| !t.is_empty()).map(Secret::new),
        expiration,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn rendered_credentials_are_what_the_endpoint_parser_reads() {
        let now = time::macros::datetime!(2026-11-22 12:00 UTC);
        let answer = |credentials: &Credentials| {
            http::Response::new(render(credentials, now).expose().as_bytes().to_vec())
        };
        let temporary = Credentials::new(
            "ASIA1",
            "secret",
            Some(Secret::new("token")),
            Some(now + Duration::from_secs(900)),
        );
        assert_eq!(parse(&answer(&temporary)).expect("valid"), temporary);
        let long_term = Credentials::new("AKIA1", "secret", None, None);
        let served = parse(&answer(&long_term)).expect("valid");
        assert_eq!(served.access_key_id(), "AKIA1");
        assert_eq!(served.session_token(), None);
        assert_eq!(served.expiration(), Some(now + Duration::from_secs(3600)));
    }

    fn from(pairs: &[(&str, &str)]) -> Result<Option<Container>, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Container::from_env(&move |key: &str| map.get(key).cloned())
    }

    #[test]
    fn relative_and_full_uris_with_tokens() {
        let ecs = from(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )])
        .expect("valid")
        .expect("set");
        assert_eq!(ecs.uri(), "http://169.254.170.2/v2/credentials/abc");
        assert_eq!(ecs.token, None);
        let eks = from(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://[fd00:ec2::23]/v1/credentials",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored"),
        ])
        .expect("valid")
        .expect("set");
        assert_eq!(eks.token, Some(Token::File("/var/run/token".into())));
        let local = from(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:8080/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"),
        ])
        .expect("valid")
        .expect("set");
        let request = local
            .request(Some(&Secret::new("secret-token\n")))
            .expect("a request");
        assert_eq!(request.headers()["authorization"], "secret-token");
        assert_eq!(from(&[]).expect("valid"), None);
    }

    #[test]
    fn plain_http_elsewhere_is_refused() {
        for uri in ["http://example.com/creds", "ftp://127.0.0.1/", "not a url"] {
            let error = from(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)]).expect_err(uri);
            assert_eq!(error.field(), "AWS_CONTAINER_CREDENTIALS_FULL_URI");
        }
        assert!(
            from(&[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "https://example.com/c"
            )])
            .is_ok()
        );
    }

    #[test]
    fn parses_the_answer() {
        let response = http::Response::new(
            br#"{"AccessKeyId":"ASIA","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z","AccountId":"123456789012"}"#.to_vec(),
        );
        let credentials = parse(&response).expect("valid");
        assert_eq!(credentials.access_key_id(), "ASIA");
        assert!(credentials.expiration().is_some());
    }
}
