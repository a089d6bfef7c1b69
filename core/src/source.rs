//! Where the credentials that sign STS calls come from.
//!
//! This is the seam for the full default chain (profiles, SSO, process,
//! web identity, container, IMDS): a chain is one more
//! [`SourceCredentials::External`] source that the driver resolves.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::Credentials;
use crate::error::ConfigError;
use crate::secret::Secret;

/// The credentials a session signs its STS calls with.
#[derive(Clone)]
#[non_exhaustive]
pub enum SourceCredentials {
    /// Fixed credentials: explicit keys, or the environment's as read when
    /// the session was built.
    Static(Credentials),
    /// Asked of the driver before every refresh: another session (role
    /// chaining) or any provider the adapter offers.
    External,
}

impl fmt::Debug for SourceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(credentials) => f.debug_tuple("Static").field(credentials).finish(),
            Self::External => f.write_str("External"),
        }
    }
}

/// The environment variable names, as the AWS CLI and SDKs read them.
const ACCESS_KEY_ID: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"];
const SECRET_ACCESS_KEY: [&str; 2] = ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"];
const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
const EXPIRATION: &str = "AWS_CREDENTIAL_EXPIRATION";

/// Reads credentials from environment variables through `lookup`:
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (or their legacy names
/// `AWS_ACCESS_KEY` and `AWS_SECRET_KEY`), optionally `AWS_SESSION_TOKEN`
/// and `AWS_CREDENTIAL_EXPIRATION`. Empty values count as unset.
pub fn from_environment(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| lookup(name).filter(|v| !v.is_empty()))
    };
    let access_key_id = first(&ACCESS_KEY_ID);
    let secret = first(&SECRET_ACCESS_KEY);
    let (access_key_id, secret) = match (access_key_id, secret) {
        (Some(id), Some(secret)) => (id, secret),
        (None, None) => {
            return Err(ConfigError::new(
                "source_credentials",
                "no credentials to call STS with: set source credentials or a source session on the builder, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
            ));
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "AWS_SECRET_ACCESS_KEY",
                "is not set, but AWS_ACCESS_KEY_ID is; set both",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "AWS_ACCESS_KEY_ID",
                "is not set, but AWS_SECRET_ACCESS_KEY is; set both",
            ));
        }
    };
    let expiration = first(&[EXPIRATION])
        .map(|text| {
            OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| {
                ConfigError::new(EXPIRATION, format!("`{text}` is not an RFC 3339 time: {e}"))
            })
        })
        .transpose()?;
    Ok(Credentials::new(
        access_key_id,
        Secret::new(secret),
        first(&[SESSION_TOKEN]).map(Secret::new),
        expiration,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn reads_the_standard_variables() {
        let credentials = from_environment(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_CREDENTIAL_EXPIRATION", "2030-01-01T00:00:00Z"),
        ]))
        .expect("complete");
        assert_eq!(credentials.access_key_id(), "AKID");
        assert_eq!(credentials.secret_access_key().expose(), "secret");
        assert_eq!(
            credentials.session_token().map(Secret::expose),
            Some("token")
        );
        assert!(credentials.expiration().is_some());
    }

    #[test]
    fn legacy_names_work_and_half_a_pair_is_named() {
        let credentials =
            from_environment(env(&[("AWS_ACCESS_KEY", "AKID"), ("AWS_SECRET_KEY", "s")]))
                .expect("legacy");
        assert_eq!(credentials.access_key_id(), "AKID");
        let error = from_environment(env(&[("AWS_ACCESS_KEY_ID", "AKID")])).unwrap_err();
        assert_eq!(error.field(), "AWS_SECRET_ACCESS_KEY");
        let error = from_environment(env(&[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
        ]))
        .unwrap_err();
        assert_eq!(error.field(), "source_credentials");
        let error = from_environment(env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_CREDENTIAL_EXPIRATION", "tomorrow"),
        ]))
        .unwrap_err();
        assert_eq!(error.field(), "AWS_CREDENTIAL_EXPIRATION");
    }
}
