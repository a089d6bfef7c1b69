//! One refresh from start to credentials: the steps of each credential
//! method as a small state machine. It says what it needs next and is told
//! the answer; the engine decides when fetches start and what their results
//! mean for callers.
//!
//! An STS call asks for its source credentials first and for the MFA code
//! last, right before the request is signed: a chained source may take a
//! while to refresh, and a TOTP code is only good for about 30 seconds. A
//! retryable failure of the upstream call (STS, or the IoT credential
//! provider) is retried with the same inputs, signed anew at the time of the
//! retry. When STS refuses a source session's credentials as stale (an MFA
//! session revoked or expired early), the source is told and asked once
//! more: one new MFA session, not a loop.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::chain::run::{Ask, ChainSource, SourceRun, Step, Told};
use crate::command::{CommandOutput, CommandSpec};
use crate::config::{Method, Mfa, RoleSource, StsCall, StsMethod};
use crate::credentials::Credentials;
use crate::custom::{CustomCredentials, ProviderError};
use crate::error::{ConfigError, Error, HookError, TransportError};
use crate::iot::{self, IotRequest, TlsIdentity};
use crate::mfa::{self, MfaError};
use crate::rejection::{Refused, Rejection};
use crate::retry::RetryPolicy;
use crate::saturating;
use crate::secret::Secret;
use crate::sts::{self, StsEndpoint};

/// Something a fetch needs from the driver.
pub(crate) enum Need {
    /// The source credentials; `refused` are the ones STS just refused.
    Source {
        refused: Option<Refused>,
    },
    MfaToken {
        serial: String,
    },
    Transmit(Box<http::Request<Vec<u8>>>, TlsIdentity),
    Provider,
    ReadFile(String),
    WriteFile(String, Secret),
    RunCommand(CommandSpec),
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
    FileRead(Result<Vec<u8>, String>),
    FileWritten(Result<(), String>),
    CommandFinished(Result<CommandOutput, String>),
}

/// An upstream call, with everything needed to make it again.
#[derive(Debug)]
enum Call {
    Sts {
        call: StsCall,
        source: Arc<Credentials>,
        code: Option<Secret>,
        /// Whether STS refusing `source` is worth asking the source again.
        renewable: Renewable,
    },
    Iot(Box<IotRequest>),
}

/// Whether the source of an STS call can be asked for other credentials
/// when STS refuses the ones it gave: a source session can, once per
/// fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewable {
    Once,
    No,
}

impl Call {
    /// The request, signed at `cx.now` where it is signed at all, and the
    /// TLS identity it goes out with.
    fn request(&self, cx: Context<'_>) -> Result<(http::Request<Vec<u8>>, TlsIdentity), Error> {
        match self {
            Call::Sts {
                call, source, code, ..
            } => {
                let endpoint = cx.endpoint.as_ref().map_err(|e| Error::from(e.clone()))?;
                let request = match (call, code) {
                    (StsCall::AssumeRole(params), code) => {
                        sts::assume_role_request(params, code.as_ref(), source, endpoint, cx.now)?
                    }
                    (StsCall::SessionToken(params), Some(code)) => {
                        sts::session_token_request(params, code, source, endpoint, cx.now)?
                    }
                    (StsCall::SessionToken(_), None) => {
                        return Err(MfaError::StaticTokenSpent.into());
                    }
                };
                Ok((request, TlsIdentity::Default))
            }
            Call::Iot(request) => Ok((request.request()?, TlsIdentity::Device)),
        }
    }

    /// The credentials in an answer, or the error it stands for.
    fn parse(&self, response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
        match self {
            Call::Sts {
                call: StsCall::AssumeRole(_),
                ..
            } => sts::parse_assume_role(response).map(|assumed| {
                tracing::debug!(target: "refresh_session", arn = %assumed.arn, "role assumed");
                assumed.credentials
            }),
            Call::Sts {
                call: StsCall::SessionToken(params),
                ..
            } => sts::parse_session_token(response).inspect(|credentials| {
                tracing::info!(target: "refresh_session", serial = params.serial_number(), expiration = ?credentials.expiration(), "MFA session started");
            }),
            Call::Iot(_) => iot::parse_credentials(response),
        }
    }
}

/// One upstream call and its place among the retries.
#[derive(Debug)]
pub(crate) struct Attempt {
    call: Call,
    count: Attempts,
}

impl Attempt {
    fn first(call: Call, cx: Context<'_>) -> Self {
        Self {
            call,
            count: Attempts::first(cx),
        }
    }
}

/// The attempts at one exchange: how many, and since when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    /// Counting from 1.
    number: u32,
    /// When the first attempt went out, on the local clock: elapsed time is
    /// measured there, unaffected by skew corrections.
    started: OffsetDateTime,
}

impl Attempts {
    pub(crate) fn first(cx: Context<'_>) -> Self {
        Self {
            number: 1,
            started: cx.local_now,
        }
    }

    /// After a failed attempt: the delay before the next one, counting it,
    /// or `None` to give up with `error`. A clock-skew error right after
    /// the clock was corrected is retried at once; a retryable one after a
    /// jittered backoff, while attempts and time are left.
    pub(crate) fn retry(&mut self, error: &Error, cx: Context<'_>) -> Option<std::time::Duration> {
        let skewed = cx.skew_corrected && error.is_clock_skew();
        if !skewed && !error.is_retryable() {
            return None;
        }
        let jitter = if skewed { 0.0 } else { cx.jitter };
        let delay = cx
            .retry
            .delay(self.number, self.started, cx.local_now, jitter)?;
        tracing::info!(
            target: "refresh_session",
            %error,
            attempt = self.number,
            ?delay,
            "retrying the upstream call"
        );
        self.number += 1;
        Some(delay)
    }
}

/// A fetch in progress: what it waits for, with what it has so far.
#[derive(Debug)]
pub(crate) enum Fetch {
    AwaitSource(Renewable),
    AwaitToken {
        source: Arc<Credentials>,
        renewable: Renewable,
    },
    AwaitResponse(Attempt),
    AwaitRetry(Attempt, OffsetDateTime),
    AwaitProvider,
    /// The default chain is getting the base credentials.
    Chain(SourceRun),
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
            local_now: saturating::shift(now, -skew),
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
            Method::Sts(role) => match &mut role.source {
                RoleSource::Static(credentials) => {
                    let source = Arc::new(credentials.clone());
                    after_source(role, source, Renewable::No, cx)
                }
                RoleSource::External => (
                    Fetch::AwaitSource(Renewable::Once),
                    Progress::Need(Need::Source { refused: None }),
                ),
                RoleSource::Chain(chain) => {
                    let (run, step) = SourceRun::start(chain, cx);
                    chain_step(run, step, method, cx)
                }
            },
            Method::Chain(chain) => {
                let (run, step) = SourceRun::start(chain, cx);
                chain_step(run, step, method, cx)
            }
        }
    }

    /// When the fetch wants [`on_timeout`](Self::on_timeout), if ever.
    pub(crate) fn wake_at(&self) -> Option<OffsetDateTime> {
        match self {
            Fetch::AwaitRetry(_, at) => Some(*at),
            Fetch::Chain(run) => run.wake_at(),
            _ => None,
        }
    }

    /// The time from [`wake_at`](Self::wake_at) has come: retry.
    pub(crate) fn on_timeout(&mut self, method: &mut Method, cx: Context<'_>) -> Option<Progress> {
        let current = std::mem::replace(self, Fetch::Done);
        let (next, progress) = match current {
            Fetch::AwaitRetry(attempt, at) if cx.now >= at => transmit(attempt, cx),
            Fetch::Chain(mut run) => match chain_of(method).and_then(|c| run.on_timeout(c, cx)) {
                Some(step) => chain_step(run, step, method, cx),
                None => {
                    *self = Fetch::Chain(run);
                    return None;
                }
            },
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
            (Fetch::AwaitSource(renewable), Method::Sts(role), Answer::Source(result)) => {
                match result {
                    Ok(source) => after_source(role, source, renewable, cx),
                    Err(error) => done(Err(Error::Source(Arc::new(error)))),
                }
            }
            (
                Fetch::AwaitToken { source, renewable },
                Method::Sts(role),
                Answer::MfaToken(result),
            ) => match result
                .map_err(MfaError::Provider)
                .and_then(|raw| mfa::parse_token(raw.expose()))
            {
                Ok(code) => transmit(
                    Attempt::first(role.call(source, Some(code), renewable), cx),
                    cx,
                ),
                Err(error) => done(Err(error.into())),
            },
            (Fetch::AwaitResponse(attempt), _, Answer::Response(response)) => {
                match attempt.call.parse(&response) {
                    Ok(credentials) => done(Ok(credentials)),
                    Err(error) => match attempt.call.refused_source(&error) {
                        Some(refused) => (
                            Fetch::AwaitSource(Renewable::No),
                            Progress::Need(Need::Source {
                                refused: Some(refused),
                            }),
                        ),
                        None => retry_or_fail(attempt, error, cx),
                    },
                }
            }
            (Fetch::AwaitResponse(attempt), _, Answer::Transport(error)) => {
                retry_or_fail(attempt, error.into(), cx)
            }
            (Fetch::Chain(mut run), method, answer) => {
                let told = match answer {
                    Answer::FileRead(result) => Told::File(result),
                    Answer::FileWritten(result) => Told::Written(result),
                    Answer::CommandFinished(result) => Told::Process(result),
                    Answer::Response(response) => Told::Response(response),
                    Answer::Transport(error) => Told::Transport(error),
                    Answer::MfaToken(result) => Told::MfaToken(
                        result
                            .map_err(MfaError::Provider)
                            .and_then(|raw| mfa::parse_token(raw.expose()))
                            .map_err(Error::from),
                    ),
                    _ => {
                        *self = Fetch::Chain(run);
                        return None;
                    }
                };
                match chain_of(method).and_then(|chain| run.on(chain, told, cx)) {
                    Some(step) => chain_step(run, step, method, cx),
                    None => {
                        *self = Fetch::Chain(run);
                        return None;
                    }
                }
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

impl StsMethod {
    fn call(&self, source: Arc<Credentials>, code: Option<Secret>, renewable: Renewable) -> Call {
        Call::Sts {
            call: self.call.clone(),
            source,
            code,
            renewable,
        }
    }
}

impl Call {
    /// The source credentials `error` says STS refused as stale, if the
    /// source may be asked for others.
    fn refused_source(&self, error: &Error) -> Option<Refused> {
        let Call::Sts {
            source,
            renewable: Renewable::Once,
            ..
        } = self
        else {
            return None;
        };
        let rejection = Rejection::of(error)?;
        tracing::info!(target: "refresh_session", ?rejection, "STS refused the source credentials; asking the source again");
        Some(Refused {
            access_key_id: source.access_key_id().to_owned(),
            rejection,
        })
    }
}

fn done(result: Result<Credentials, Error>) -> (Fetch, Progress) {
    (Fetch::Done, Progress::Done(result))
}

/// With source credentials in hand: get the MFA code if one is needed,
/// else send.
fn after_source(
    role: &mut StsMethod,
    source: Arc<Credentials>,
    renewable: Renewable,
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
            return (
                Fetch::AwaitToken { source, renewable },
                Progress::Need(need),
            );
        }
    };
    transmit(Attempt::first(role.call(source, code, renewable), cx), cx)
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

/// The default chain a method draws on.
fn chain_of(method: &mut Method) -> Option<&mut ChainSource> {
    match method {
        Method::Chain(chain) => Some(chain),
        Method::Sts(StsMethod {
            source: RoleSource::Chain(chain),
            ..
        }) => Some(chain),
        _ => None,
    }
}

/// Where a chain run's step leaves the fetch: still in the chain, or on to
/// the role with the base credentials (or done, for a chain session).
fn chain_step(
    run: SourceRun,
    step: Step,
    method: &mut Method,
    cx: Context<'_>,
) -> (Fetch, Progress) {
    let need = match step {
        Step::Ask(Ask::ReadFile(path)) => Need::ReadFile(path),
        Step::Ask(Ask::WriteFile(path, contents)) => Need::WriteFile(path, contents),
        Step::Ask(Ask::RunProcess(command)) => Need::RunCommand(command),
        Step::Ask(Ask::Transmit(request)) => {
            Need::Transmit(Box::new(request), TlsIdentity::Default)
        }
        Step::Ask(Ask::MfaToken(serial)) => Need::MfaToken { serial },
        Step::Wait => return (Fetch::Chain(run), Progress::Wait),
        Step::Done(result) => {
            return match (method, result) {
                (Method::Sts(role), Ok(source)) => after_source(role, source, Renewable::No, cx),
                (Method::Sts(_), Err(error)) => done(Err(Error::Source(Arc::new(error)))),
                (_, result) => done(result.map(|c| (*c).clone())),
            };
        }
    };
    (Fetch::Chain(run), Progress::Need(need))
}

/// After a failed upstream call: retry (see [`Attempts::retry`]) or give
/// up with `error`.
fn retry_or_fail(mut attempt: Attempt, error: Error, cx: Context<'_>) -> (Fetch, Progress) {
    match attempt.count.retry(&error, cx) {
        None => done(Err(error)),
        Some(delay) if delay.is_zero() => transmit(attempt, cx),
        Some(delay) => (
            Fetch::AwaitRetry(attempt, saturating::add(cx.now, delay)),
            Progress::Wait,
        ),
    }
}
