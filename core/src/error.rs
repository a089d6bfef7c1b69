//! Every way a session can fail, as types that say what to do about it.
//!
//! [`ConfigError`] is a value the user set that cannot work; [`Error`] is
//! anything a refresh can run into. Errors are `Clone` because one failed
//! refresh reaches every caller that waited for it. No error carries a
//! secret: service messages come from AWS, and hook errors are the user's
//! own.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

pub use crate::chain::{ChainError, Skipped, SourceKind};
pub use crate::custom::ProviderError;
pub use crate::mfa::MfaError;
pub use crate::profile::ProfileError;

/// A configuration value that cannot work: names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    field: &'static str,
    problem: String,
    profile_file: Option<Box<ProfileError>>,
}

impl From<ProfileError> for ConfigError {
    fn from(error: ProfileError) -> Self {
        Self {
            field: "profile_file",
            problem: error.to_string(),
            profile_file: Some(Box::new(error)),
        }
    }
}

impl ConfigError {
    /// An error for `field`; `problem` says what is wrong and what to do.
    /// Adapters use it for their own options.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
            profile_file: None,
        }
    }

    /// For a shared `config` or `credentials` file that cannot be read:
    /// the file, the line and the problem.
    pub fn profile_file(&self) -> Option<&ProfileError> {
        self.profile_file.as_deref()
    }

    /// The field as the user set it, in the AWS API's spelling where there is
    /// one (`DurationSeconds`, `RoleArn`) and the builder's otherwise.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong and what to do instead.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

/// Why a refresh, a `whoami` or a signing call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session's configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// AWS answered with an error.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The request did not get an answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// AWS answered, but not in a form this crate understands.
    #[error("{service} answered HTTP {status} with a response that could not be read: {problem}")]
    InvalidResponse {
        /// The service that answered (`STS`).
        service: &'static str,
        /// The HTTP status code.
        status: u16,
        /// What is wrong with the response.
        problem: String,
    },
    /// A source handed out credentials that were already expired.
    #[error(
        "{origin} returned credentials that expired at {expiration}, which is not after now ({now}); check the source and the local clock"
    )]
    ExpiredCredentials {
        /// Where the credentials came from.
        origin: &'static str,
        /// Their expiry.
        expiration: OffsetDateTime,
        /// The time the session judged them by.
        now: OffsetDateTime,
    },
    /// Getting or using an MFA token failed.
    #[error(transparent)]
    Mfa(#[from] MfaError),
    /// The custom credential provider failed or returned something unusable.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The credentials used to call STS could not be obtained.
    #[error("source credentials: {0}")]
    Source(#[source] Arc<Error>),
    /// The default credential chain found no source, or a source failed in
    /// a way of its own (a `credential_process` that exits with an error,
    /// an SSO login that has expired).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// SigV4 signing failed (for example a URI `aws-sigv4` cannot parse).
    #[error("signing the request failed: {0}")]
    Signing(String),
    /// A source credentials provider (user code, or an AWS SDK credentials
    /// provider) failed.
    #[error("the source credentials provider failed: {0}")]
    SourceProvider(#[source] HookError),
    /// No valid credential is left, the last refresh failed, and the next
    /// attempt is not due yet: the source is not asked again before
    /// `retry_at`, whatever the number of callers.
    #[error(
        "no valid credentials: the last refresh failed ({last}); the next attempt is at {retry_at}"
    )]
    BackingOff {
        /// Why the last refresh failed.
        #[source]
        last: Arc<Error>,
        /// When the next attempt may start (AWS's time).
        retry_at: OffsetDateTime,
    },
    /// The refresh ended before its source answered: code it ran panicked,
    /// or its thread or task could not start or was dropped.
    #[error(transparent)]
    Aborted(#[from] Abort),
}

impl Error {
    /// Whether trying again later may succeed: throttling, 5xx answers,
    /// `IDPCommunicationError` and transport failures. Access denied,
    /// validation errors and bad MFA codes are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service(e) => e.is_retryable(),
            Error::Transport(e) => e.is_retryable(),
            Error::InvalidResponse { status, .. } => *status >= 500,
            Error::Source(e) => e.is_retryable(),
            Error::BackingOff { last, .. } => last.is_retryable(),
            Error::Aborted(abort) => !matches!(abort, Abort::Panicked(_)),
            Error::Provider(ProviderError::Failed(_)) | Error::SourceProvider(_) => true,
            _ => false,
        }
    }

    /// Whether AWS refused the request's timing or signature in a way a
    /// wrong local clock causes (`RequestTimeTooSkewed`, `RequestExpired`,
    /// `SignatureDoesNotMatch` for "Signature expired", ...). Retried only
    /// when the answer also showed the clock to be off.
    pub fn is_clock_skew(&self) -> bool {
        matches!(self, Error::Service(e) if e.code().is_clock_skew())
    }
}

/// An error answer from an AWS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    service: &'static str,
    code: ErrorCode,
    message: String,
    request_id: Option<String>,
    status: u16,
}

impl ServiceError {
    /// An error answer from `service` with HTTP `status`.
    pub fn new(
        service: &'static str,
        status: u16,
        code: ErrorCode,
        message: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            service,
            code,
            message: message.into(),
            request_id,
            status,
        }
    }

    /// The error code, such as [`ErrorCode::AccessDenied`].
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// The service's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request id, for AWS support.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the service asked to be tried again later.
    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable() || self.status >= 500 || self.status == 429
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} returned {} (HTTP {})",
            self.service,
            self.code.as_str(),
            self.status
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// AWS error codes that callers act on; any other code is kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The caller may not perform the action (or the role's trust policy
    /// does not allow it, for instance a missing or wrong `ExternalId`).
    AccessDenied,
    /// The credentials used to sign have expired.
    ExpiredToken,
    /// The access key id is unknown.
    InvalidClientTokenId,
    /// The signature does not match: usually a wrong secret access key.
    SignatureDoesNotMatch,
    /// The request's signature is incomplete.
    IncompleteSignature,
    /// The request is too old or too far in the future for its signature.
    RequestExpired,
    /// The local clock is too far from AWS's.
    RequestTimeTooSkewed,
    /// A parameter is invalid.
    ValidationError,
    /// The session policy is malformed.
    MalformedPolicyDocument,
    /// The session policy and tags are too large once packed.
    PackedPolicyTooLarge,
    /// STS is not activated in the region.
    RegionDisabled,
    /// The identity provider could not be reached.
    IdpCommunicationError,
    /// The caller is sending too many requests.
    Throttling,
    /// The account's request rate is exceeded.
    RequestLimitExceeded,
    /// The service is unavailable.
    ServiceUnavailable,
    /// The service failed internally.
    InternalFailure,
    /// Any other code.
    Other(String),
}

impl ErrorCode {
    /// The code as AWS spells it.
    pub fn parse(code: &str) -> Self {
        match code {
            "AccessDenied" | "AccessDeniedException" => Self::AccessDenied,
            "ExpiredToken" | "ExpiredTokenException" => Self::ExpiredToken,
            "InvalidClientTokenId" => Self::InvalidClientTokenId,
            "SignatureDoesNotMatch" => Self::SignatureDoesNotMatch,
            "IncompleteSignature" => Self::IncompleteSignature,
            "RequestExpired" => Self::RequestExpired,
            "RequestTimeTooSkewed" => Self::RequestTimeTooSkewed,
            "ValidationError" => Self::ValidationError,
            "MalformedPolicyDocument" => Self::MalformedPolicyDocument,
            "PackedPolicyTooLarge" => Self::PackedPolicyTooLarge,
            "RegionDisabledException" => Self::RegionDisabled,
            "IDPCommunicationError" => Self::IdpCommunicationError,
            "Throttling" | "ThrottlingException" | "TooManyRequestsException" => Self::Throttling,
            "RequestLimitExceeded" => Self::RequestLimitExceeded,
            "ServiceUnavailable" | "ServiceUnavailableException" => Self::ServiceUnavailable,
            "InternalFailure" | "InternalError" | "InternalServerError" => Self::InternalFailure,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code's canonical spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::ExpiredToken => "ExpiredToken",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::IncompleteSignature => "IncompleteSignature",
            Self::RequestExpired => "RequestExpired",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::ValidationError => "ValidationError",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::PackedPolicyTooLarge => "PackedPolicyTooLarge",
            Self::RegionDisabled => "RegionDisabledException",
            Self::IdpCommunicationError => "IDPCommunicationError",
            Self::Throttling => "Throttling",
            Self::RequestLimitExceeded => "RequestLimitExceeded",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::InternalFailure => "InternalFailure",
            Self::Other(code) => code,
        }
    }

    fn is_clock_skew(&self) -> bool {
        matches!(
            self,
            Self::RequestTimeTooSkewed | Self::RequestExpired | Self::SignatureDoesNotMatch
        ) || matches!(self, Self::Other(code) if code == "InvalidSignatureException")
    }

    fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::IdpCommunicationError
                | Self::Throttling
                | Self::RequestLimitExceeded
                | Self::ServiceUnavailable
                | Self::InternalFailure
        )
    }
}

/// A request that got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP request failed ({kind:?}): {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// A transport failure; `message` must not contain secrets.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether a later attempt may get through: not after a TLS failure
    /// (certificates do not fix themselves), an oversized answer or a
    /// request that cannot be sent.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.kind,
            TransportErrorKind::Tls
                | TransportErrorKind::TooLarge
                | TransportErrorKind::InvalidRequest
        )
    }
}

/// The kinds of transport failure a driver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Connecting, sending or receiving took longer than allowed.
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The connection was refused or dropped before an answer.
    Connect,
    /// The TLS handshake failed (certificates, protocol).
    Tls,
    /// The connection broke mid-answer, or the answer was not HTTP.
    Io,
    /// The answer was larger than the response size limit.
    TooLarge,
    /// The request could not be sent as built (for example a bad URI).
    InvalidRequest,
}

/// Why a driver gave up on a refresh. Every caller waiting for it gets
/// this, and the next caller starts a new refresh.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Abort {
    /// Code the driver ran for the refresh panicked.
    #[error("the refresh was aborted: {0}")]
    Panicked(#[from] Panicked),
    /// The runtime dropped the refresh work before it finished: the runtime
    /// shut down, or the task was cancelled.
    #[error(
        "the refresh was aborted: its {0} was dropped before it finished (did the runtime shut down?)"
    )]
    Dropped(&'static str),
    /// No thread or task could be started for the refresh.
    #[error("the refresh could not start: {0}")]
    NotStarted(String),
}

/// A panic in code run for a refresh: which code, and the panic's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} panicked")]
pub struct Panicked {
    what: &'static str,
    message: String,
}

impl Panicked {
    /// A panic of `what` (`custom credential provider`, `HTTP transport`)
    /// with the payload `catch_unwind` returned.
    pub fn new(what: &'static str, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = match (
            payload.downcast_ref::<&str>(),
            payload.downcast_ref::<String>(),
        ) {
            (Some(message), _) => (*message).to_owned(),
            (_, Some(message)) => message.clone(),
            _ => "(a panic payload that is not a string)".to_owned(),
        };
        Self { what, message }
    }

    /// The code that panicked.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The panic behind `error`, if one is among its sources: a provider
    /// that panicked fails its refresh with a hook error whose source this
    /// is.
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Panicked> {
        find_source(error)
    }
}

/// The first error of type `T` among `error` and its sources: the user's own
/// error behind a failed refresh (a hook's, kept as the source), whatever
/// wraps it.
pub fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    std::iter::successors(Some(error), |error| error.source())
        .find_map(|error| error.downcast_ref::<T>())
}

/// An error raised by user code the session calls: an MFA token provider or
/// a custom credential provider.
#[derive(Clone)]
pub struct HookError(Arc<dyn std::error::Error + Send + Sync>);

impl HookError {
    /// Wraps the hook's error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Arc::from(error.into()))
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retryable_access_denied_is_not() {
        let throttled = ServiceError::new("STS", 400, ErrorCode::parse("Throttling"), "", None);
        let unavailable = ServiceError::new("STS", 503, ErrorCode::parse("Whatever"), "", None);
        let denied = ServiceError::new("STS", 403, ErrorCode::parse("AccessDenied"), "", None);
        assert!(Error::from(throttled).is_retryable());
        assert!(Error::from(unavailable).is_retryable());
        assert!(!Error::from(denied).is_retryable());
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for code in [
            "AccessDenied",
            "IDPCommunicationError",
            "RegionDisabledException",
        ] {
            assert_eq!(ErrorCode::parse(code).as_str(), code);
        }
        assert_eq!(
            ErrorCode::parse("SomethingNew"),
            ErrorCode::Other("SomethingNew".into())
        );
    }

    #[test]
    fn service_error_display_names_code_status_and_request_id() {
        let error = ServiceError::new(
            "STS",
            403,
            ErrorCode::SignatureDoesNotMatch,
            "check your key",
            Some("req-1".into()),
        );
        assert_eq!(
            error.to_string(),
            "STS returned SignatureDoesNotMatch (HTTP 403): check your key (request id req-1)"
        );
    }
}
