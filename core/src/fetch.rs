//! One refresh from start to credentials: the steps of each credential
//! method as a small state machine. It says what it needs next and is told
//! the answer; the engine decides when fetches start and what their results
//! mean for callers.
//!
//! `AssumeRole` asks for its source credentials first and for the MFA code
//! last, right before the request is signed: a chained source may take a
//! while to refresh, and a TOTP code is only good for about 30 seconds. A
//! retryable failure of the upstream call (STS, or the IoT credential
//! provider) is retried with the same inputs, signed anew at the time of the
//! retry.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::{Method, Mfa, RoleMethod};
use crate::credentials::Credentials;
use crate::custom::{CustomCredentials, ProviderError};
use crate::error::{ConfigError, Error, HookError, TransportError};
use crate::iot::{self, IotRequest, TlsIdentity};
use crate::mfa::{self, MfaError};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::source::SourceCredentials;
use crate::sts::{self, AssumeRole, StsEndpoint};

/// Something a fetch needs from the driver.
pub(crate) enum Need {
    Source,
    MfaToken { serial: String },
    Transmit(Box<http::Request<Vec<u8>>>, TlsIdentity),
    Provider,
}

/// Where a fetch stands after a step.
pub(crate) enum Progress {
    Need(Need),
    /// Nothing to do until [`Fetch::wake_at`].
    Wait,
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

/// An upstream call, with everything needed to make it again.
#[derive(Debug)]
enum Call {
    AssumeRole {
        params: Box<AssumeRole>,
        source: Arc<Credentials>,
        code: Option<Secret>,
    },
    Iot(Box<IotRequest>),
}

impl Call {
    /// The request, signed at `cx.now` where it is signed at all, and the
    /// TLS identity it goes out with.
    fn request(&self, cx: Context<'_>) -> Result<(http::Request<Vec<u8>>, TlsIdentity), Error> {
        match self {
            Call::AssumeRole {
                params,
                source,
                code,
            } => {
                let endpoint = cx.endpoint.as_ref().map_err(|e| Error::from(e.clone()))?;
                let request =
                    sts::assume_role_request(params, code.as_ref(), source, endpoint, cx.now)?;
                Ok((request, TlsIdentity::Default))
            }
            Call::Iot(request) => Ok((request.request()?, TlsIdentity::Device)),
        }
    }

    /// The credentials in an answer, or the error it stands for.
    fn parse(&self, response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
        match self {
            Call::AssumeRole { .. } => sts::parse_assume_role(response).map(|assumed| {
                tracing::debug!(target: "refresh_session", arn = %assumed.arn, "role assumed");
                assumed.credentials
            }),
            Call::Iot(_) => iot::parse_credentials(response),
        }
    }
}

/// One upstream call and its place among the retries.
#[derive(Debug)]
pub(crate) struct Attempt {
    call: Call,
    /// Counting from 1.
    number: u32,
    /// When the first attempt went out, on the local clock: elapsed time is
    /// measured there, since a clock-skew correction moves AWS's time.
    started: OffsetDateTime,
}

impl Attempt {
    fn first(call: Call, cx: Context<'_>) -> Self {
        Self {
            call,
            number: 1,
            started: cx.local_now,
        }
    }
}

/// A fetch in progress: what it waits for, with what it has so far.
#[derive(Debug)]
pub(crate) enum Fetch {
    AwaitSource,
    AwaitToken {
        source: Arc<Credentials>,
    },
    AwaitResponse(Attempt),
    AwaitRetry(Attempt, OffsetDateTime),
    AwaitProvider,
    /// Finished; answers are no longer accepted.
    Done,
}

/// What a fetch step may read.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) endpoint: &'a Result<StsEndpoint, ConfigError>,
    pub(crate) retry: &'a RetryPolicy,
    /// The time, corrected for the clock skew the engine knows.
    pub(crate) now: OffsetDateTime,
    /// The local clock's time, for measuring elapsed time.
    pub(crate) local_now: OffsetDateTime,
    /// A random number in `0.0..1.0` for retry jitter.
    pub(crate) jitter: f64,
    /// The answer being handled changed the engine's clock-skew estimate,
    /// so a clock-skew error is worth one more, correctly dated, try.
    pub(crate) skew_corrected: bool,
}

impl<'a> Context<'a> {
    /// The context at AWS's time `now`, which is the local time plus
    /// `skew`.
    pub(crate) fn new(
        endpoint: &'a Result<StsEndpoint, ConfigError>,
        retry: &'a RetryPolicy,
        now: OffsetDateTime,
        skew: time::Duration,
        jitter: f64,
        skew_corrected: bool,
    ) -> Self {
        Self {
            endpoint,
            retry,
            now,
            local_now: now - skew,
            jitter,
            skew_corrected,
        }
    }
}

impl Fetch {
    /// Starts a fetch: returns it with its first need, or its result.
    pub(crate) fn start(method: &mut Method, cx: Context<'_>) -> (Self, Progress) {
        match method {
            Method::Custom => (Fetch::AwaitProvider, Progress::Need(Need::Provider)),
            Method::Iot(request) => transmit(Attempt::first(Call::Iot(request.clone()), cx), cx),
            Method::AssumeRole(role) => match &role.source {
                SourceCredentials::Static(credentials) => {
                    let source = Arc::new(credentials.clone());
                    after_source(role, source, cx)
                }
                SourceCredentials::External => (Fetch::AwaitSource, Progress::Need(Need::Source)),
            },
        }
    }

    /// When the fetch wants [`on_timeout`](Self::on_timeout), if ever.
    pub(crate) fn wake_at(&self) -> Option<OffsetDateTime> {
        match self {
            Fetch::AwaitRetry(_, at) => Some(*at),
            _ => None,
        }
    }

    /// The time from [`wake_at`](Self::wake_at) has come: retry.
    pub(crate) fn on_timeout(&mut self, cx: Context<'_>) -> Option<Progress> {
        let current = std::mem::replace(self, Fetch::Done);
        let (next, progress) = match current {
            Fetch::AwaitRetry(attempt, at) if cx.now >= at => transmit(attempt, cx),
            unchanged => {
                *self = unchanged;
                return None;
            }
        };
        *self = next;
        Some(progress)
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
                    Ok(code) => transmit(Attempt::first(role.call(source, Some(code)), cx), cx),
                    Err(error) => done(Err(error.into())),
                }
            }
            (Fetch::AwaitResponse(attempt), _, Answer::Response(response)) => {
                match attempt.call.parse(&response) {
                    Ok(credentials) => done(Ok(credentials)),
                    Err(error) => retry_or_fail(attempt, error, cx),
                }
            }
            (Fetch::AwaitResponse(attempt), _, Answer::Transport(error)) => {
                retry_or_fail(attempt, error.into(), cx)
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

impl RoleMethod {
    fn call(&self, source: Arc<Credentials>, code: Option<Secret>) -> Call {
        Call::AssumeRole {
            params: self.params.clone(),
            source,
            code,
        }
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
    let code = match &mut role.mfa {
        Mfa::None => None,
        Mfa::Static(code) => match code.take() {
            Some(code) => Some(code),
            None => return done(Err(MfaError::StaticTokenSpent.into())),
        },
        Mfa::Provider { serial } => {
            let need = Need::MfaToken {
                serial: serial.clone(),
            };
            return (Fetch::AwaitToken { source }, Progress::Need(need));
        }
    };
    transmit(Attempt::first(role.call(source, code), cx), cx)
}

/// Builds (and signs, where it is signed) `attempt`'s request at `cx.now`.
fn transmit(attempt: Attempt, cx: Context<'_>) -> (Fetch, Progress) {
    match attempt.call.request(cx) {
        Ok((request, tls)) => (
            Fetch::AwaitResponse(attempt),
            Progress::Need(Need::Transmit(Box::new(request), tls)),
        ),
        Err(error) => done(Err(error)),
    }
}

/// After a failed upstream call: retry at once if the clock was just
/// corrected, after a jittered backoff if the error is retryable and
/// attempts and time are left, else give up with `error`.
fn retry_or_fail(attempt: Attempt, error: Error, cx: Context<'_>) -> (Fetch, Progress) {
    let skewed = cx.skew_corrected && error.is_clock_skew();
    if !skewed && !error.is_retryable() {
        return done(Err(error));
    }
    let jitter = if skewed { 0.0 } else { cx.jitter };
    let Some(delay) = cx
        .retry
        .delay(attempt.number, attempt.started, cx.local_now, jitter)
    else {
        return done(Err(error));
    };
    tracing::info!(
        target: "refresh_session",
        %error,
        attempt = attempt.number,
        ?delay,
        "retrying the upstream call"
    );
    let next = Attempt {
        number: attempt.number + 1,
        ..attempt
    };
    if delay.is_zero() {
        return transmit(next, cx);
    }
    (Fetch::AwaitRetry(next, cx.now + delay), Progress::Wait)
}
