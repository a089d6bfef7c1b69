//! One refresh from start to credentials: the steps of each credential
//! method as a small state machine. It says what it needs next and is told
//! the answer; the engine decides when fetches start and what their results
//! mean for callers.
//!
//! `AssumeRole` asks for its source credentials first and for the MFA code
//! last, right before the request is signed: a chained source may take a
//! while to refresh, and a TOTP code is only good for about 30 seconds.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::{Method, Mfa, RoleMethod};
use crate::credentials::Credentials;
use crate::custom::{CustomCredentials, ProviderError};
use crate::error::{ConfigError, Error, HookError, TransportError};
use crate::mfa::{self, MfaError};
use crate::secret::Secret;
use crate::source::SourceCredentials;
use crate::sts::{self, StsEndpoint};

/// Something a fetch needs from the driver.
pub(crate) enum Need {
    Source,
    MfaToken { serial: String },
    Transmit(Box<http::Request<Vec<u8>>>),
    Provider,
}

/// Where a fetch stands after a step.
pub(crate) enum Progress {
    Need(Need),
    Done(Result<Credentials, Error>),
}

/// An answer from the driver.
pub(crate) enum Answer {
    Source(Result<Arc<Credentials>, Error>),
    MfaToken(Result<Secret, HookError>),
    Response(http::Response<Vec<u8>>),
    Transport(TransportError),
    Provided(Result<CustomCredentials, HookError>),
}

/// A fetch in progress: what it waits for, with what it has so far.
#[derive(Debug)]
pub(crate) enum Fetch {
    AwaitSource,
    AwaitToken {
        source: Arc<Credentials>,
    },
    AwaitResponse,
    AwaitProvider,
    /// Finished; answers are no longer accepted.
    Done,
}

/// What a fetch step may read: the STS endpoint and the time.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) endpoint: &'a Result<StsEndpoint, ConfigError>,
    pub(crate) now: OffsetDateTime,
}

impl Fetch {
    /// Starts a fetch: returns it with its first need, or its result.
    pub(crate) fn start(method: &mut Method, cx: Context<'_>) -> (Self, Progress) {
        match method {
            Method::Custom => (Fetch::AwaitProvider, Progress::Need(Need::Provider)),
            Method::AssumeRole(role) => match &role.source {
                SourceCredentials::Static(credentials) => {
                    let source = Arc::new(credentials.clone());
                    after_source(role, source, cx)
                }
                SourceCredentials::External => (Fetch::AwaitSource, Progress::Need(Need::Source)),
            },
        }
    }

    /// Feeds an answer in; `None` if the fetch is not waiting for that kind
    /// of answer (the answer is dropped).
    pub(crate) fn advance(
        &mut self,
        method: &mut Method,
        cx: Context<'_>,
        answer: Answer,
    ) -> Option<Progress> {
        let current = std::mem::replace(self, Fetch::Done);
        let (next, progress) = match (current, method, answer) {
            (Fetch::AwaitSource, Method::AssumeRole(role), Answer::Source(result)) => {
                match result {
                    Ok(source) => after_source(role, source, cx),
                    Err(error) => done(Err(Error::Source(Arc::new(error)))),
                }
            }
            (Fetch::AwaitToken { source }, Method::AssumeRole(role), Answer::MfaToken(result)) => {
                match result
                    .map_err(MfaError::Provider)
                    .and_then(|raw| mfa::parse_token(raw.expose()))
                {
                    Ok(code) => transmit(role, &source, Some(&code), cx),
                    Err(error) => done(Err(error.into())),
                }
            }
            (Fetch::AwaitResponse, Method::AssumeRole(_), Answer::Response(response)) => {
                done(sts::parse_assume_role(&response).map(|assumed| {
                    tracing::debug!(target: "refresh_session", arn = %assumed.arn, "role assumed");
                    assumed.credentials
                }))
            }
            (Fetch::AwaitResponse, Method::AssumeRole(_), Answer::Transport(error)) => {
                done(Err(error.into()))
            }
            (Fetch::AwaitProvider, Method::Custom, Answer::Provided(result)) => match result {
                Ok(result) => done(result.validate()),
                Err(error) => done(Err(ProviderError::Failed(error).into())),
            },
            (unchanged, _, _) => {
                *self = unchanged;
                return None;
            }
        };
        *self = next;
        Some(progress)
    }
}

fn done(result: Result<Credentials, Error>) -> (Fetch, Progress) {
    (Fetch::Done, Progress::Done(result))
}

/// With source credentials in hand: get the MFA code if one is needed,
/// else send.
fn after_source(
    role: &mut RoleMethod,
    source: Arc<Credentials>,
    cx: Context<'_>,
) -> (Fetch, Progress) {
    if let Some(expiration) = source.expiration().filter(|at| *at <= cx.now) {
        let expired = Error::ExpiredCredentials {
            origin: "the source credentials",
            expiration,
            now: cx.now,
        };
        return done(Err(Error::Source(Arc::new(expired))));
    }
    match &mut role.mfa {
        Mfa::None => transmit(role, &source, None, cx),
        Mfa::Static(code) => match code.take() {
            Some(code) => transmit(role, &source, Some(&code), cx),
            None => done(Err(MfaError::StaticTokenSpent.into())),
        },
        Mfa::Provider { serial } => {
            let need = Need::MfaToken {
                serial: serial.clone(),
            };
            (Fetch::AwaitToken { source }, Progress::Need(need))
        }
    }
}

fn transmit(
    role: &RoleMethod,
    source: &Credentials,
    code: Option<&Secret>,
    cx: Context<'_>,
) -> (Fetch, Progress) {
    let request = cx
        .endpoint
        .as_ref()
        .map_err(|e| Error::from(e.clone()))
        .and_then(|endpoint| {
            sts::assume_role_request(&role.params, code, source, endpoint, cx.now)
        });
    match request {
        Ok(request) => (
            Fetch::AwaitResponse,
            Progress::Need(Need::Transmit(Box::new(request))),
        ),
        Err(error) => done(Err(error)),
    }
}
