//! The custom credential method: what a user's provider returns, and the
//! checks that turn it into [`Credentials`] or a typed error.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::Credentials;
use crate::error::{Error, HookError};
use crate::secret::Secret;

/// How errors name this source.
pub(crate) const ORIGIN: &str = "the custom credential provider";

/// Why a custom provider's result is not usable.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider returned an error.
    #[error("the custom credential provider failed: {0}")]
    Failed(#[source] HookError),
    /// A required field is missing or empty.
    #[error("the custom credential provider returned no {0}")]
    MissingField(&'static str),
    /// The expiration is not a time with an offset.
    #[error("the custom credential provider returned an unusable expiration: {0}")]
    InvalidExpiration(String),
    /// A map of fields had a key this crate does not know.
    #[error(
        "the custom credential provider returned an unknown field `{0}`; expected access_key, secret_key, token, expiry_time"
    )]
    UnknownField(String),
}

/// What a custom provider returns: fields as the provider has them, checked
/// when the session receives them.
///
/// ```
/// use refresh_session_core::custom::CustomCredentials;
///
/// let result = CustomCredentials::new()
///     .access_key_id("ASIAEXAMPLE")
///     .secret_access_key("secret")
///     .session_token("token")
///     .expiration_rfc3339("2030-01-01T00:00:00Z");
/// # let _ = result;
/// ```
#[derive(Debug, Clone, Default)]
pub struct CustomCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    session_token: Option<Secret>,
    expiration: Option<Expiration>,
}

#[derive(Debug, Clone)]
enum Expiration {
    At(OffsetDateTime),
    Text(String),
}

impl CustomCredentials {
    /// An empty result, to fill in.
    pub fn new() -> Self {
        Self::default()
    }

    /// The access key id.
    pub fn access_key_id(mut self, value: impl Into<String>) -> Self {
        self.access_key_id = Some(value.into());
        self
    }

    /// The secret access key.
    pub fn secret_access_key(mut self, value: impl Into<Secret>) -> Self {
        self.secret_access_key = Some(value.into());
        self
    }

    /// The session token, for temporary credentials.
    pub fn session_token(mut self, value: impl Into<Secret>) -> Self {
        self.session_token = Some(value.into());
        self
    }

    /// The expiry as a time.
    pub fn expiration(mut self, at: OffsetDateTime) -> Self {
        self.expiration = Some(Expiration::At(at));
        self
    }

    /// The expiry as RFC 3339 text, which must carry a UTC offset
    /// (`2030-01-01T00:00:00Z` or `...+02:00`).
    pub fn expiration_rfc3339(mut self, text: impl Into<String>) -> Self {
        self.expiration = Some(Expiration::Text(text.into()));
        self
    }

    /// A result from string fields with the names boto3-refresh-session's
    /// custom method uses: `access_key`, `secret_key`, `token` and
    /// `expiry_time`.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ProviderError> {
        fields
            .into_iter()
            .try_fold(Self::new(), |result, (key, value)| match key {
                "access_key" => Ok(result.access_key_id(value)),
                "secret_key" => Ok(result.secret_access_key(value)),
                "token" => Ok(result.session_token(value)),
                "expiry_time" => Ok(result.expiration_rfc3339(value)),
                other => Err(ProviderError::UnknownField(other.to_owned())),
            })
    }

    /// Checks the fields. Whether the credentials are still valid is the
    /// engine's check, the same for every method.
    pub(crate) fn validate(self) -> Result<Credentials, Error> {
        let access_key_id = self
            .access_key_id
            .filter(|v| !v.is_empty())
            .ok_or(ProviderError::MissingField("access_key_id"))?;
        let secret_access_key = self
            .secret_access_key
            .filter(|v| !v.is_empty())
            .ok_or(ProviderError::MissingField("secret_access_key"))?;
        let expiration = match self.expiration {
            None => return Err(ProviderError::MissingField("expiration").into()),
            Some(Expiration::At(at)) => at,
            Some(Expiration::Text(text)) => parse_expiration(&text)?,
        };
        let session_token = self.session_token.filter(|v| !v.is_empty());
        Ok(Credentials::new(
            access_key_id,
            secret_access_key,
            session_token,
            Some(expiration),
        ))
    }
}

impl From<Credentials> for CustomCredentials {
    fn from(credentials: Credentials) -> Self {
        Self {
            access_key_id: Some(credentials.access_key_id().to_owned()),
            secret_access_key: Some(credentials.secret_access_key().clone()),
            session_token: credentials.session_token().cloned(),
            expiration: credentials.expiration().map(Expiration::At),
        }
    }
}

fn parse_expiration(text: &str) -> Result<OffsetDateTime, ProviderError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
        ProviderError::InvalidExpiration(format!(
            "`{text}` is not an RFC 3339 time with a UTC offset, such as 2030-01-01T00:00:00Z ({e})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn complete() -> CustomCredentials {
        CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("secret")
            .expiration_rfc3339("2030-01-01T01:00:00+01:00")
    }

    #[test]
    fn offsets_are_honoured() {
        let credentials = complete().validate().expect("valid");
        assert_eq!(
            credentials.expiration(),
            Some(datetime!(2030-01-01 0:00 UTC))
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let missing = |c: CustomCredentials| match c.validate() {
            Err(Error::Provider(ProviderError::MissingField(field))) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(missing(CustomCredentials::new()), "access_key_id");
        assert_eq!(
            missing(
                CustomCredentials::new()
                    .access_key_id("A")
                    .secret_access_key("")
            ),
            "secret_access_key"
        );
        assert_eq!(
            missing(
                CustomCredentials::new()
                    .access_key_id("A")
                    .secret_access_key("s")
            ),
            "expiration"
        );
    }

    #[test]
    fn naive_timestamps_are_refused() {
        let result = complete()
            .expiration_rfc3339("2030-01-01T05:00:00")
            .validate();
        assert!(
            matches!(
                result,
                Err(Error::Provider(ProviderError::InvalidExpiration(_)))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn seed_field_names_are_understood_and_typos_are_not() {
        let fields = [
            ("access_key", "AKID"),
            ("secret_key", "secret"),
            ("token", "tok"),
            ("expiry_time", "2030-06-01T00:00:00Z"),
        ];
        let credentials = CustomCredentials::from_fields(fields)
            .expect("known fields")
            .validate()
            .expect("valid");
        assert_eq!(credentials.access_key_id(), "AKID");
        assert_eq!(credentials.session_token().map(Secret::expose), Some("tok"));
        assert!(matches!(
            CustomCredentials::from_fields([("expiry", "x")]),
            Err(ProviderError::UnknownField(key)) if key == "expiry"
        ));
    }
}
