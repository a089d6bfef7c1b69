//! IAM Identity Center's OIDC service (`sso-oidc`), the calls `aws sso
//! login` makes: `RegisterClient`, `StartDeviceAuthorization`, and
//! `CreateToken` with a device code or a refresh token. Requests and
//! answers only (JSON over HTTPS, unsigned: the client secret and the
//! tokens prove who asks); [`crate::device_login`] runs the login.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::{ConfigError, Error, ErrorCode, ServiceError};
use crate::json::Answer;
use crate::saturating;
use crate::secret::Secret;

/// How errors name the service.
const SERVICE: &str = "SSO OIDC";
/// The grant of a device login and of a renewal.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// What the AWS CLI registers for: role credentials of the accounts the
/// user may access.
const SCOPE: &str = "sso:account:access";

/// Where OIDC calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcEndpoint {
    base: String,
}

impl OidcEndpoint {
    /// `https://oidc.<region>.amazonaws.com`, or `endpoint_url` (as
    /// `AWS_ENDPOINT_URL_SSO_OIDC` sets it; plain http to loopback only).
    pub fn resolve(region: &str, endpoint_url: Option<&str>) -> Result<Self, ConfigError> {
        crate::validate::region("sso_region", region)?;
        let base = match endpoint_url {
            Some(url) => crate::validate::endpoint_url("AWS_ENDPOINT_URL_SSO_OIDC", url)?,
            None => format!("https://oidc.{region}.amazonaws.com"),
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// `RegisterClient`: a public client named `name` that may use device
    /// codes and refresh tokens.
    pub fn register_client(&self, name: &str) -> Result<http::Request<Vec<u8>>, Error> {
        self.post(
            "/client/register",
            serde_json::json!({
                "clientName": name,
                "clientType": "public",
                "scopes": [SCOPE],
                "grantTypes": [DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT],
            }),
        )
    }

    /// `StartDeviceAuthorization` for the portal at `start_url`.
    pub fn start_device_authorization(
        &self,
        client: &Client,
        start_url: &str,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        self.post(
            "/device_authorization",
            serde_json::json!({
                "clientId": client.id,
                "clientSecret": client.secret.expose(),
                "startUrl": start_url,
            }),
        )
    }

    /// `CreateToken` for an authorized device code.
    pub fn device_token(
        &self,
        client: &Client,
        device_code: &Secret,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        self.post(
            "/token",
            serde_json::json!({
                "clientId": client.id,
                "clientSecret": client.secret.expose(),
                "grantType": DEVICE_CODE_GRANT,
                "deviceCode": device_code.expose(),
            }),
        )
    }

    /// `CreateToken` renewing a login with its refresh token, as botocore
    /// and the AWS SDKs do.
    pub fn refresh_token(
        &self,
        client: &Client,
        refresh_token: &Secret,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        self.post(
            "/token",
            serde_json::json!({
                "clientId": client.id,
                "clientSecret": client.secret.expose(),
                "grantType": REFRESH_TOKEN_GRANT,
                "refreshToken": refresh_token.expose(),
            }),
        )
    }

    fn post(&self, path: &str, body: serde_json::Value) -> Result<http::Request<Vec<u8>>, Error> {
        http::Request::post(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| Error::Signing(format!("an SSO OIDC request: {e}")))
    }
}

/// A registered OIDC client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `clientId`.
    pub id: String,
    /// `clientSecret`.
    pub secret: Secret,
    /// When the registration ends (`clientSecretExpiresAt`).
    pub expires_at: OffsetDateTime,
}

/// A device authorization: what the user confirms in a browser.
#[derive(Clone)]
pub struct DeviceAuthorization {
    /// The code the client polls `CreateToken` with.
    pub device_code: Secret,
    /// The code the user checks in the browser.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// Where the user goes, the code filled in.
    pub verification_uri_complete: Option<String>,
    /// When the device code stops working.
    pub expires_at: OffsetDateTime,
    /// How long to wait between polls.
    pub interval: Duration,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// An access token `CreateToken` issued.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token for the portal.
    pub access_token: Secret,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The token that renews it, if one came.
    pub refresh_token: Option<Secret>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a failed `CreateToken` for a device code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// The user has not confirmed yet: poll again after the interval.
    Authorization,
    /// Polling too fast: add 5 seconds to the interval (RFC 8628).
    SlowDown,
}

impl Pending {
    /// Whether `error` is one of these, and which.
    pub fn of(error: &Error) -> Option<Self> {
        let Error::Service(refusal) = error else {
            return None;
        };
        match refusal.code().as_str() {
            "AuthorizationPendingException" | "authorization_pending" => Some(Self::Authorization),
            "SlowDownException" | "slow_down" => Some(Self::SlowDown),
            _ => None,
        }
    }
}

/// Reads a `RegisterClient` answer.
pub fn parse_client(response: &http::Response<Vec<u8>>) -> Result<Client, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Registered {
        client_id: String,
        client_secret: String,
        client_secret_expires_at: i64,
    }
    let answer = successful(response)?;
    let registered: Registered = answer.decode("a RegisterClient answer")?;
    answer.require(&[
        ("clientId", &registered.client_id),
        ("clientSecret", &registered.client_secret),
    ])?;
    let expires_at = OffsetDateTime::from_unix_timestamp(registered.client_secret_expires_at)
        .map_err(|_| answer.invalid("clientSecretExpiresAt is out of range".into()))?;
    Ok(Client {
        id: registered.client_id,
        secret: Secret::new(registered.client_secret),
        expires_at,
    })
}

/// Reads a `StartDeviceAuthorization` answer received at `now`.
pub fn parse_device_authorization(
    response: &http::Response<Vec<u8>>,
    now: OffsetDateTime,
) -> Result<DeviceAuthorization, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Started {
        device_code: String,
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_in: u64,
        interval: Option<u64>,
    }
    let answer = successful(response)?;
    let started: Started = answer.decode("a StartDeviceAuthorization answer")?;
    answer.require(&[
        ("deviceCode", &started.device_code),
        ("userCode", &started.user_code),
        ("verificationUri", &started.verification_uri),
    ])?;
    Ok(DeviceAuthorization {
        device_code: Secret::new(started.device_code),
        user_code: started.user_code,
        verification_uri: started.verification_uri,
        verification_uri_complete: started.verification_uri_complete,
        expires_at: saturating::add(now, Duration::from_secs(started.expires_in)),
        // RFC 8628's default.
        interval: Duration::from_secs(started.interval.unwrap_or(5).max(1)),
    })
}

/// Reads a `CreateToken` answer received at `now`.
pub fn parse_token(
    response: &http::Response<Vec<u8>>,
    now: OffsetDateTime,
) -> Result<Token, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        access_token: String,
        expires_in: u64,
        refresh_token: Option<String>,
    }
    let answer = successful(response)?;
    let created: Created = answer.decode("a CreateToken answer")?;
    answer.require(&[("accessToken", &created.access_token)])?;
    Ok(Token {
        access_token: Secret::new(created.access_token),
        expires_at: saturating::add(now, Duration::from_secs(created.expires_in)),
        refresh_token: created.refresh_token.map(Secret::new),
    })
}

/// The answer on success; else the error it carries: the code from
/// `x-amzn-ErrorType`, else the body's OAuth `error`, and its
/// `error_description`.
fn successful(response: &http::Response<Vec<u8>>) -> Result<Answer<'_>, Error> {
    #[derive(Deserialize, Default)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    if response.status().is_success() {
        return Ok(Answer::of(SERVICE, response));
    }
    let body: OAuthError = serde_json::from_slice(response.body()).unwrap_or_default();
    let header = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    let Some(code) = header.or(body.error) else {
        return Err(crate::json::service_error(SERVICE, response));
    };
    Err(Error::Service(ServiceError::new(
        SERVICE,
        response.status().as_u16(),
        ErrorCode::parse(&code),
        body.error_description.unwrap_or_default(),
        None,
    )))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    fn response(status: u16, error_type: Option<&str>, body: &str) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).expect("valid");
        if let Some(error_type) = error_type {
            response
                .headers_mut()
                .insert("x-amzn-errortype", error_type.parse().expect("a header"));
        }
        response
    }

    fn client() -> Client {
        Client {
            id: "cid".into(),
            secret: Secret::new("csecret"),
            expires_at: datetime!(2027-03-04 12:00 UTC),
        }
    }

    #[test]
    fn requests_follow_the_api_reference() {
        let endpoint = OidcEndpoint::resolve("eu-west-1", None).expect("endpoint");
        let request = endpoint
            .refresh_token(&client(), &Secret::new("rt"))
            .expect("a request");
        assert_eq!(request.uri(), "https://oidc.eu-west-1.amazonaws.com/token");
        let body: serde_json::Value = serde_json::from_slice(request.body()).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({"clientId":"cid","clientSecret":"csecret","grantType":"refresh_token","refreshToken":"rt"})
        );
        let register = endpoint
            .register_client("refresh-session")
            .expect("a request");
        assert_eq!(register.uri().path(), "/client/register");
        let start = endpoint
            .start_device_authorization(&client(), "https://corp.awsapps.com/start")
            .expect("a request");
        assert_eq!(start.uri().path(), "/device_authorization");
        assert!(OidcEndpoint::resolve("eu-west-1", Some("http://example.com")).is_err());
        let local =
            OidcEndpoint::resolve("eu-west-1", Some("http://127.0.0.1:9/")).expect("loopback");
        assert_eq!(
            local
                .refresh_token(&client(), &Secret::new("rt"))
                .expect("ok")
                .uri(),
            "http://127.0.0.1:9/token"
        );
    }

    #[test]
    fn answers_and_errors_are_read() {
        let token = parse_token(
            &response(200, None, r#"{"accessToken":"at","expiresIn":28800,"refreshToken":"rt2","tokenType":"Bearer"}"#),
            NOW,
        )
        .expect("a token");
        assert_eq!(token.expires_at, datetime!(2026-12-04 20:00 UTC));
        assert_eq!(
            token.refresh_token.as_ref().map(Secret::expose),
            Some("rt2")
        );
        let pending = parse_token(
            &response(
                400,
                Some("AuthorizationPendingException:http://internal"),
                r#"{"error":"authorization_pending"}"#,
            ),
            NOW,
        )
        .unwrap_err();
        assert_eq!(Pending::of(&pending), Some(Pending::Authorization));
        let slow = parse_token(&response(400, None, r#"{"error":"slow_down"}"#), NOW).unwrap_err();
        assert_eq!(Pending::of(&slow), Some(Pending::SlowDown));
        let denied = parse_token(
            &response(
                400,
                Some("InvalidGrantException"),
                r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
            ),
            NOW,
        )
        .unwrap_err();
        assert_eq!(Pending::of(&denied), None);
        assert!(
            denied.to_string().contains("InvalidGrantException"),
            "{denied}"
        );
        let started = parse_device_authorization(
            &response(200, None, r#"{"deviceCode":"dc","userCode":"ABCD-EFGH","verificationUri":"https://device.sso.eu-west-1.amazonaws.com/","verificationUriComplete":"https://device.sso.eu-west-1.amazonaws.com/?user_code=ABCD-EFGH","expiresIn":600,"interval":1}"#),
            NOW,
        )
        .expect("started");
        assert_eq!(started.interval, Duration::from_secs(1));
        assert!(!format!("{started:?}").contains("dc\""));
        let registered = parse_client(&response(
            200,
            None,
            r#"{"clientId":"cid","clientSecret":"csecret","clientIdIssuedAt":1796000000,"clientSecretExpiresAt":1803776000}"#,
        ))
        .expect("registered");
        assert_eq!(registered.expires_at.unix_timestamp(), 1_803_776_000);
    }
}
