//! IAM Identity Center (SSO): the access token `aws sso login` left in the
//! token cache (`~/.aws/sso/cache/<sha1>.json`), traded for role
//! credentials with `GetRoleCredentials`. An `sso-session` login near its
//! end is renewed with its refresh token first, as botocore does, and the
//! cache written back for every tool on the machine.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::Error;
use crate::json;
use crate::oidc::OidcEndpoint;
use crate::secret::Secret;
use crate::sso_token::SsoToken;

use super::{ChainError, SourceKind};

/// How errors name the service.
const SERVICE: &str = "SSO";

/// Role credentials from an SSO login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sso {
    /// The token cache file.
    pub(crate) cache_file: String,
    account_id: String,
    role_name: String,
    /// `https://portal.sso.<region>.amazonaws.com`, or an override.
    endpoint: String,
    /// The commands that log in again, quoted.
    login: String,
    /// Where an `sso-session` login is renewed; legacy profiles are not.
    oidc: Option<OidcEndpoint>,
}

/// What the token cache allows.
#[derive(Debug)]
pub(crate) enum CachedLogin {
    /// A token with time left.
    Use(Secret),
    /// A login near its end that its refresh token can renew.
    Renew(Box<SsoToken>),
}

impl Sso {
    /// Credentials for `role_name` in `account_id`, with the token in
    /// `cache_file`, from the portal at `endpoint`; `login` names the commands
    /// that log in again.
    pub(crate) fn new(
        cache_file: String,
        account_id: String,
        role_name: String,
        endpoint: String,
        login: String,
        oidc: Option<OidcEndpoint>,
    ) -> Self {
        Self {
            cache_file,
            account_id,
            role_name,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            login,
            oidc,
        }
    }

    /// What to do with the cache file's content at `now`: use its token,
    /// renew it (less than 15 minutes left, and a refresh token and a live
    /// registration to do it with), or log in again. `renewed` is the
    /// login this process renewed last, used if the file is older (it
    /// could not be written, say).
    pub(crate) fn cached_login(
        &self,
        cached: &[u8],
        renewed: Option<&SsoToken>,
        now: OffsetDateTime,
    ) -> Result<CachedLogin, Error> {
        let read = SsoToken::parse(cached).map_err(|problem| self.login_again(&problem))?;
        let token = match renewed {
            Some(renewed) if renewed.expires_at > read.expires_at => renewed.clone(),
            _ => read,
        };
        if !token.needs_refresh(now) {
            return Ok(CachedLogin::Use(token.access_token));
        }
        if self.oidc.is_some() && token.renewal(now).is_some() {
            return Ok(CachedLogin::Renew(Box::new(token)));
        }
        if token.is_valid(now) {
            return Ok(CachedLogin::Use(token.access_token));
        }
        Err(self.login_again(&format!("the login expired at {}", token.expires_at)))
    }

    /// `CreateToken` renewing `cached` with its refresh token.
    pub(crate) fn renewal_request(
        &self,
        cached: &SsoToken,
        now: OffsetDateTime,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        match (&self.oidc, cached.renewal(now)) {
            (Some(oidc), Some((client, refresh_token))) => {
                oidc.refresh_token(client, refresh_token)
            }
            _ => Err(self.login_again("the login cannot be renewed")),
        }
    }

    /// `GET /federation/credentials?role_name=..&account_id=..` with the
    /// token.
    pub(crate) fn request(&self, token: &Secret) -> Result<http::Request<Vec<u8>>, Error> {
        http::Request::get(format!(
            "{}/federation/credentials?role_name={}&account_id={}",
            self.endpoint, self.role_name, self.account_id
        ))
        .header("x-amz-sso_bearer_token", token.expose())
        .body(Vec::new())
        .map_err(|_| self.login_again("the cached token is not header text"))
    }

    /// The credentials in the portal's answer; a refused token means
    /// logging in again.
    pub(crate) fn parse(&self, response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
        if response.status() == http::StatusCode::UNAUTHORIZED {
            return Err(self.login_again("the portal refused the cached token"));
        }
        let answer = json::Answer::successful(SERVICE, response)?;
        let credentials = answer
            .decode::<RoleCredentials>("the GetRoleCredentials JSON")?
            .role_credentials;
        answer.require(&[
            ("roleCredentials.accessKeyId", &credentials.access_key_id),
            (
                "roleCredentials.secretAccessKey",
                &credentials.secret_access_key,
            ),
            ("roleCredentials.sessionToken", &credentials.session_token),
        ])?;
        let expiration = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(credentials.expiration) * 1_000_000,
        )
        .map_err(|_| answer.invalid("roleCredentials.expiration is out of range".into()))?;
        Ok(Credentials::new(
            credentials.access_key_id,
            Secret::new(credentials.secret_access_key),
            Some(Secret::new(credentials.session_token)),
            Some(expiration),
        ))
    }

    /// The error that says to log in again, and why.
    pub(crate) fn login_again(&self, why: &str) -> Error {
        Error::Chain(ChainError::Failed {
            kind: SourceKind::Sso,
            problem: format!("{why}; run {}", self.login),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentials {
    role_credentials: Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// Epoch milliseconds.
    expiration: i64,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn sso() -> Sso {
        let oidc = OidcEndpoint::resolve("eu-west-1", None).expect("endpoint");
        Sso::new(
            "/home/me/.aws/sso/cache/x.json".into(),
            "123456789012".into(),
            "ReadOnly".into(),
            "https://portal.sso.eu-west-1.amazonaws.com/".into(),
            "`aws sso login --sso-session corp`".into(),
            Some(oidc),
        )
    }

    fn token(cached: &str, now: OffsetDateTime) -> Result<CachedLogin, Error> {
        sso().cached_login(cached.as_bytes(), None, now)
    }

    #[test]
    fn a_valid_token_buys_role_credentials() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let Ok(CachedLogin::Use(token)) = token(
            r#"{"accessToken":"tok","expiresAt":"2026-11-22T13:00:00Z","region":"eu-west-1","startUrl":"https://corp.awsapps.com/start"}"#,
            now,
        ) else {
            panic!("valid until 13:00")
        };
        let request = sso().request(&token).expect("a request");
        assert_eq!(
            request.uri(),
            "https://portal.sso.eu-west-1.amazonaws.com/federation/credentials?role_name=ReadOnly&account_id=123456789012"
        );
        assert_eq!(request.headers()["x-amz-sso_bearer_token"], "tok");
        let credentials = sso()
            .parse(&http::Response::new(
                br#"{"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"s","sessionToken":"t","expiration":1795000000000}}"#.to_vec(),
            ))
            .expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIASSO");
        assert_eq!(
            credentials.expiration().map(OffsetDateTime::unix_timestamp),
            Some(1_795_000_000)
        );
    }

    #[test]
    fn a_login_near_its_end_is_renewed_when_it_can_be() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let renewable = r#"{"accessToken":"tok","expiresAt":"2026-11-22T12:05:00Z","clientId":"cid","clientSecret":"cs","registrationExpiresAt":"2027-01-01T00:00:00Z","refreshToken":"rt"}"#;
        let Ok(CachedLogin::Renew(cached)) = token(renewable, now) else {
            panic!("five minutes left, and a refresh token")
        };
        let request = sso().renewal_request(&cached, now).expect("a request");
        assert_eq!(request.uri(), "https://oidc.eu-west-1.amazonaws.com/token");
        // Without a refresh token, the token is used while it lasts.
        let plain = r#"{"accessToken":"tok","expiresAt":"2026-11-22T12:05:00Z"}"#;
        assert!(matches!(token(plain, now), Ok(CachedLogin::Use(_))));
        // A legacy profile is not renewed.
        let legacy = Sso {
            oidc: None,
            ..sso()
        };
        assert!(matches!(
            legacy.cached_login(renewable.as_bytes(), None, now),
            Ok(CachedLogin::Use(_))
        ));
        // A login this process renewed wins over an older file.
        let renewed =
            SsoToken::parse(br#"{"accessToken":"new","expiresAt":"2026-11-22T20:00:00Z"}"#)
                .expect("valid");
        match sso().cached_login(plain.as_bytes(), Some(&renewed), now) {
            Ok(CachedLogin::Use(token)) => assert_eq!(token.expose(), "new"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expired_missing_and_refused_tokens_say_how_to_log_in() {
        let now = datetime!(2026-11-22 12:00 UTC);
        let expired = token(
            r#"{"accessToken":"tok","expiresAt":"2026-11-22T11:00:00UTC"}"#,
            now,
        )
        .expect_err("expired");
        let garbled = token("{", now).expect_err("garbled");
        let mut refused = http::Response::new(Vec::new());
        *refused.status_mut() = http::StatusCode::UNAUTHORIZED;
        let refused = sso().parse(&refused).expect_err("refused");
        for error in [expired, garbled, refused] {
            assert!(
                error
                    .to_string()
                    .contains("aws sso login --sso-session corp"),
                "{error}"
            );
        }
    }
}
