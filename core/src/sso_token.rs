//! The SSO token cache file (`~/.aws/sso/cache/<sha1>.json`) as the AWS CLI
//! and botocore write it: the access token and its expiry, and for
//! `sso-session` logins the client registration and refresh token that
//! renew it without a browser. Read, renewed and written back here in the
//! same format, so that every tool on the machine benefits. And which
//! login, and which file, a profile or an `[sso-session]` names.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ConfigError;
use crate::oidc::{Client, Token};
use crate::profile::{ProfileSet, Section};
use crate::saturating;
use crate::secret::Secret;

/// A token with less than this left is renewed first, as botocore's
/// `SSOTokenProvider` does.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The login an SSO profile or an `[sso-session]` names: where `sso login`
/// goes, and where its token is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLogin {
    /// The portal (`sso_start_url`).
    pub start_url: String,
    /// Identity Center's region (`sso_region`).
    pub region: String,
    /// The `sso-session`; `None` for a legacy profile, whose login is not
    /// renewed.
    pub session: Option<String>,
    /// The token cache file.
    pub cache_file: PathBuf,
}

impl SsoLogin {
    /// The login of `[sso-session name]`; `env` finds the home directory.
    pub fn of_session(
        profiles: &ProfileSet,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let section = profiles.sso_session(name).ok_or_else(|| {
            ConfigError::new(
                "sso_session",
                format!("there is no [sso-session {name}] section"),
            )
        })?;
        let get = |key: &'static str| {
            section.get(key).ok_or_else(|| {
                ConfigError::new(key, format!("is required in [sso-session {name}]"))
            })
        };
        Self::new(get("sso_start_url")?, get("sso_region")?, Some(name), env)
    }

    /// The login profile `name` uses: its `sso_session`'s, or its own
    /// `sso_start_url` and `sso_region` (a legacy profile).
    pub fn of_profile(
        profiles: &ProfileSet,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let profile = profiles
            .profile(name)
            .ok_or_else(|| ConfigError::new("profile", format!("there is no profile `{name}`")))?;
        Self::in_profile(profiles, profile, env)
    }

    pub(crate) fn in_profile(
        profiles: &ProfileSet,
        profile: &Section,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(session) = profile.get("sso_session") {
            return Self::of_session(profiles, session, env);
        }
        let get = |key: &'static str| {
            profile
                .get(key)
                .ok_or_else(|| ConfigError::new(key, "is required for an SSO profile"))
        };
        Self::new(get("sso_start_url")?, get("sso_region")?, None, env)
    }

    fn new(
        start_url: &str,
        region: &str,
        session: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        crate::validate::region("sso_region", region)?;
        // The AWS CLI keys the cache by session name, or a legacy
        // profile's start URL.
        let key = session.unwrap_or(start_url);
        let cache_file = crate::profile::home(env)
            .ok_or_else(|| ConfigError::new("HOME", "is not set: the SSO token cache is under it"))?
            .join(".aws/sso/cache")
            .join(cache_file_name(key));
        Ok(Self {
            start_url: start_url.to_owned(),
            region: region.to_owned(),
            session: session.map(str::to_owned),
            cache_file,
        })
    }

    /// How to log in again, for profile `profile`: the commands, quoted.
    pub fn login_commands(&self, profile: &str) -> String {
        let flags = match &self.session {
            Some(session) => format!("--sso-session {session}"),
            None => format!("--profile {profile}"),
        };
        format!("`aws sso login {flags}` or `refresh-session sso login {flags}`")
    }
}

/// The cache file's name for `key` (the `sso-session` name, or the start
/// URL of a legacy profile): its SHA-1, in hex, as the AWS CLI names it.
pub(crate) fn cache_file_name(key: &str) -> String {
    format!("{}.json", crate::hex::encode(&Sha1::digest(key.as_bytes())))
}

/// An SSO login as the token cache holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoToken {
    /// The portal the login is for.
    pub start_url: Option<String>,
    /// The Identity Center region.
    pub region: Option<String>,
    /// The bearer token for the portal.
    pub access_token: Secret,
    /// When the access token expires.
    pub expires_at: OffsetDateTime,
    /// The client registration that can renew it.
    pub client: Option<Client>,
    /// The refresh token that renews it.
    pub refresh_token: Option<Secret>,
}

/// The file's fields, in the AWS CLI's names.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    access_token: String,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

impl SsoToken {
    /// Reads a cache file's content; the error says what is wrong without
    /// quoting it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let file: File = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "the token cache file is not the AWS CLI's JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        let expires_at = time_field("expiresAt", &file.expires_at)?;
        let client = match (
            file.client_id,
            file.client_secret,
            file.registration_expires_at,
        ) {
            (Some(id), Some(secret), Some(expires)) => Some(Client {
                id,
                secret: Secret::new(secret),
                expires_at: time_field("registrationExpiresAt", &expires)?,
            }),
            _ => None,
        };
        Ok(Self {
            start_url: file.start_url,
            region: file.region,
            access_token: Secret::new(file.access_token),
            expires_at,
            client,
            refresh_token: file.refresh_token.map(Secret::new),
        })
    }

    /// The file's content (it holds the tokens and the client secret).
    pub fn render(&self) -> Secret {
        let file = File {
            start_url: self.start_url.clone(),
            region: self.region.clone(),
            access_token: self.access_token.expose().to_owned(),
            expires_at: crate::json::timestamp(self.expires_at),
            client_id: self.client.as_ref().map(|c| c.id.clone()),
            client_secret: self.client.as_ref().map(|c| c.secret.expose().to_owned()),
            registration_expires_at: self
                .client
                .as_ref()
                .map(|c| crate::json::timestamp(c.expires_at)),
            refresh_token: self.refresh_token.as_ref().map(|t| t.expose().to_owned()),
        };
        Secret::new(serde_json::to_string(&file).unwrap_or_default())
    }

    /// Whether the access token works at `now`.
    pub fn is_valid(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }

    /// Whether the access token has less than [`REFRESH_WINDOW`] left.
    pub fn needs_refresh(&self, now: OffsetDateTime) -> bool {
        saturating::add(now, REFRESH_WINDOW) >= self.expires_at
    }

    /// The registration and refresh token to renew the login with, while
    /// the registration lasts.
    pub fn renewal(&self, now: OffsetDateTime) -> Option<(&Client, &Secret)> {
        let client = self.client.as_ref().filter(|c| now < c.expires_at)?;
        Some((client, self.refresh_token.as_ref()?))
    }

    /// The login renewed with `token` (issued at `now`); the registration
    /// stays, and so does the refresh token unless a new one came.
    pub fn renewed(&self, token: Token) -> Self {
        Self {
            access_token: token.access_token,
            expires_at: token.expires_at,
            refresh_token: token.refresh_token.or_else(|| self.refresh_token.clone()),
            ..self.clone()
        }
    }
}

impl fmt::Debug for SsoToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("expires_at", &self.expires_at)
            .field("client", &self.client)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

/// A time field; the AWS CLI v1 wrote `2019-11-14T04:05:45UTC`.
fn time_field(field: &str, text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(&text.replace("UTC", "Z"), &Rfc3339)
        .map_err(|_| format!("{field} of the token cache file is not a time"))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    fn cached() -> SsoToken {
        SsoToken::parse(
            br#"{"startUrl":"https://corp.awsapps.com/start","region":"eu-west-1","accessToken":"old","expiresAt":"2026-12-04T12:10:00Z","clientId":"cid","clientSecret":"csecret","registrationExpiresAt":"2027-03-04T12:00:00Z","refreshToken":"rt-1"}"#,
        )
        .expect("the AWS CLI's format")
    }

    #[test]
    fn cache_files_are_named_like_the_aws_clis() {
        // The AWS SDKs' documented examples.
        assert_eq!(
            cache_file_name("https://d-abc123.awsapps.com/start"),
            "40a89917e3175433e361b710a9d43528d7f1890a.json"
        );
        assert_eq!(
            cache_file_name("admin"),
            "d033e22ae348aeb5660fc2140aec35850c4da997.json"
        );
    }

    #[test]
    fn a_token_near_its_end_is_renewed_while_the_registration_lasts() {
        let token = cached();
        assert!(token.is_valid(NOW));
        assert!(token.needs_refresh(NOW), "ten minutes left");
        assert!(!token.needs_refresh(datetime!(2026-12-04 11:50 UTC) - Duration::from_secs(1)));
        let (client, refresh) = token.renewal(NOW).expect("renewable");
        assert_eq!((client.id.as_str(), refresh.expose()), ("cid", "rt-1"));
        assert!(token.renewal(datetime!(2027-03-04 12:00 UTC)).is_none());
        let legacy =
            SsoToken::parse(br#"{"accessToken":"t","expiresAt":"2026-12-04T13:00:00UTC"}"#)
                .expect("the AWS CLI v1's format");
        assert!(legacy.renewal(NOW).is_none());
    }

    #[test]
    fn renewed_logins_are_written_in_the_same_format() {
        let renewed = cached().renewed(Token {
            access_token: Secret::new("new"),
            expires_at: datetime!(2026-12-04 20:00 UTC),
            refresh_token: None,
        });
        let written: serde_json::Value =
            serde_json::from_str(renewed.render().expose()).expect("JSON");
        assert_eq!(
            written,
            serde_json::json!({
                "startUrl": "https://corp.awsapps.com/start",
                "region": "eu-west-1",
                "accessToken": "new",
                "expiresAt": "2026-12-04T20:00:00Z",
                "clientId": "cid",
                "clientSecret": "csecret",
                "registrationExpiresAt": "2027-03-04T12:00:00Z",
                "refreshToken": "rt-1",
            })
        );
        assert_eq!(
            SsoToken::parse(renewed.render().expose().as_bytes()),
            Ok(renewed)
        );
    }

    #[test]
    fn unreadable_files_are_not_quoted() {
        let error = SsoToken::parse(br#"{"accessToken":"sekrit","expiresAt":"soon"}"#).unwrap_err();
        assert!(
            !error.contains("sekrit") && error.contains("expiresAt"),
            "{error}"
        );
        assert!(SsoToken::parse(b"{").is_err());
    }
}
