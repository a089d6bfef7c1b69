//! The refresh engine: a sans-IO event loop that owns the cached credential,
//! decides when to refresh, runs one fetch at a time, and tells its driver
//! what to do.
//!
//! The shape is that of `str0m` and `quinn-proto`'s `Connection`. Time is
//! always an argument (the local clock: the engine corrects it for AWS's
//! itself) and the jitter comes from the seed, so the same inputs give the
//! same outputs. `refresh_session_io::Driver` is the one driver every
//! adapter runs; this is its contract.
//!
//! # Methods
//!
//! - **Callers** ask with [`Engine::poll_access`] (credentials, or the fetch
//!   to wait for, or that fetch's error), report a service's refusal with
//!   [`Engine::credentials_rejected`], and an eager session starts with
//!   [`Engine::prefetch`].
//! - **Inputs**: [`Engine::handle_input`] answers a request;
//!   [`Engine::handle_timeout`] says the time from `poll_timeout` has come;
//!   [`Engine::abort`] says the driver could not finish the fetch in flight
//!   (user code panicked, its task was dropped, no thread could start).
//! - **Outputs**: [`Engine::poll_request`] is work to perform ([`Request`],
//!   matched exhaustively); [`Engine::poll_event`] is news to pass on
//!   ([`Event`]: publish this snapshot, wake the waiters of that fetch).
//! - **Timers**: [`Engine::poll_timeout`] is when to call `handle_timeout`.
//!
//! # Rules
//!
//! - After every call that takes `&mut self`, drain `poll_event`, then take
//!   requests from `poll_request`, then re-read `poll_timeout`: any of them
//!   may have changed.
//! - At most one fetch is in flight, and it waits for at most one request:
//!   answer each request once, with the fetch id it carries. Answers for a
//!   fetch that is no longer in flight are ignored.
//! - A fetch that will never be answered must be aborted, or its waiters
//!   wait for ever.
//! - A `handle_timeout` before the timeout does nothing.
//! - Nothing here panics on input: times from outside (`Date` headers,
//!   expirations, TTLs, configured durations) are added with saturating
//!   arithmetic, and a `Date` more than a day off the local clock fails the
//!   fetch instead of moving the clock.
//!
//! # Refresh semantics (every adapter shows these)
//!
//! - fresh: the cached credential, nothing else;
//! - advisory: the cached credential at once, and one refresh starts unless
//!   one is running or a failed one is backing off;
//! - mandatory, expired or none yet: the caller waits for the one refresh in
//!   flight (starting it if needed); if it fails in a way trying again may
//!   fix, the caller gets the cached credential while it is valid, else its
//!   error (or, with `serve_expired_on_failure`, the expired credential);
//! - after a failure the next attempt waits: 5-10 minutes while a valid
//!   credential is served, 5 s after one that trying again will not fix in
//!   the mandatory window, a jittered ramp to once a minute with nothing
//!   valid left, during which callers get [`Error::BackingOff`] at once;
//! - `defer_refresh(false)`: the driver fetches at construction
//!   ([`Engine::prefetch`]) and a timer refreshes before the advisory
//!   window, so callers never wait.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use crate::backoff::{Backoff, Holding, Jitter};
use crate::command::{CommandOutput, CommandSpec};
use crate::config::{Method, Resolved, SessionConfig};
use crate::credentials::Credentials;
use crate::custom::CustomCredentials;
use crate::error::{Abort, ConfigError, Error, HookError, TransportError};
use crate::fetch::{Answer, Context, Fetch, Need, Progress};
use crate::fingerprint::Recorder;
use crate::iot::TlsIdentity;
use crate::policy::{Freshness, RefreshPolicy, Windows};
use crate::rejection::{Refused, Rejection};
use crate::resolved::ResolvedSession;
use crate::retry::RetryPolicy;
use crate::saturating;
use crate::secret::Secret;
use crate::skew::ClockSkew;
use crate::sts::StsEndpoint;

/// The largest response body a driver reads; past it the driver reports
/// [`TransportErrorKind::TooLarge`](crate::error::TransportErrorKind::TooLarge).
/// STS and credential endpoints answer in a few kilobytes.
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Identifies one fetch; inputs name the fetch they answer, and a waiting
/// caller holds the id of the fetch it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FetchId(u64);

/// The answer to a caller asking for credentials.
#[derive(Debug)]
pub enum Access {
    /// Use these; they are valid at the time asked.
    Ready(Arc<Credentials>),
    /// Wait for this fetch to finish, then ask again with its id.
    Pending(FetchId),
    /// The fetch the caller waited for failed.
    Failed(Error),
}

/// Work for the driver: perform it and answer with the [`Input`] named.
///
/// Deliberately not `#[non_exhaustive]`: a driver matches every kind, so a
/// new kind of request fails to compile in a driver that cannot perform it
/// instead of leaving a fetch in flight forever.
pub enum Request {
    /// Admit the fetch (a fleet's bound on refreshes at once, its pace);
    /// answer with [`Input::Admitted`] when it may start. Only for sessions
    /// that [use admission](crate::SessionConfig::use_admission).
    Admit {
        /// The fetch waiting to start.
        fetch: FetchId,
    },
    /// Send `request` and answer with [`Input::Response`] or
    /// [`Input::TransportFailed`].
    Transmit {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// A signed request; its headers and body hold secrets (the session
        /// token, an MFA code), so it is never logged.
        request: http::Request<Vec<u8>>,
        /// The TLS identity to send it with.
        tls: TlsIdentity,
    },
    /// Ask the MFA token provider for a code for `serial_number`; answer
    /// with [`Input::MfaToken`].
    MfaToken {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// The MFA device.
        serial_number: String,
    },
    /// Call the custom credential provider; answer with
    /// [`Input::Provided`].
    CallProvider {
        /// The fetch this belongs to.
        fetch: FetchId,
    },
    /// Get the credentials to sign the STS call with; answer with
    /// [`Input::SourceCredentials`].
    SourceCredentials {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// STS refused the source's previous credentials: tell the source
        /// (its `credentials_rejected`) before asking it, so that it
        /// refreshes instead of handing them out again.
        refused: Option<Refused>,
    },
    /// Read the file at `path` (a web identity token, the SSO token cache,
    /// a container authorization token), at most
    /// [`MAX_RESPONSE_BYTES`]; answer with [`Input::FileRead`].
    ReadFile {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// The file.
        path: String,
    },
    /// Replace the file at `path` with `contents` (the SSO token cache,
    /// renewed): written whole to a new file only its owner may read
    /// (0600), then renamed over it, so that no reader sees half of it;
    /// answer with [`Input::FileWritten`].
    WriteFile {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// The file.
        path: String,
        /// What to write; it holds tokens.
        contents: Secret,
    },
    /// Run `command` (a profile's `credential_process`); answer with
    /// [`Input::CommandFinished`].
    RunCommand {
        /// The fetch this belongs to.
        fetch: FetchId,
        /// What to run.
        command: CommandSpec,
    },
}

impl Request {
    /// The fetch the request belongs to.
    pub fn fetch(&self) -> FetchId {
        match self {
            Request::Admit { fetch }
            | Request::Transmit { fetch, .. }
            | Request::MfaToken { fetch, .. }
            | Request::CallProvider { fetch }
            | Request::SourceCredentials { fetch, .. }
            | Request::ReadFile { fetch, .. }
            | Request::WriteFile { fetch, .. }
            | Request::RunCommand { fetch, .. } => *fetch,
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Admit { fetch } => f.debug_struct("Admit").field("fetch", fetch).finish(),
            Request::Transmit {
                fetch,
                request,
                tls,
            } => f
                .debug_struct("Transmit")
                .field("fetch", fetch)
                .field("method", request.method())
                .field("uri", request.uri())
                .field("tls", tls)
                .finish_non_exhaustive(),
            Request::MfaToken {
                fetch,
                serial_number,
            } => f
                .debug_struct("MfaToken")
                .field("fetch", fetch)
                .field("serial_number", serial_number)
                .finish(),
            Request::CallProvider { fetch } => f
                .debug_struct("CallProvider")
                .field("fetch", fetch)
                .finish(),
            Request::SourceCredentials { fetch, refused } => f
                .debug_struct("SourceCredentials")
                .field("fetch", fetch)
                .field("refused", refused)
                .finish(),
            Request::WriteFile { fetch, path, .. } => f
                .debug_struct("WriteFile")
                .field("fetch", fetch)
                .field("path", path)
                .finish_non_exhaustive(),
            Request::ReadFile { fetch, path } => f
                .debug_struct("ReadFile")
                .field("fetch", fetch)
                .field("path", path)
                .finish(),
            Request::RunCommand { fetch, command } => f
                .debug_struct("RunCommand")
                .field("fetch", fetch)
                .field("program", &command.program)
                .finish_non_exhaustive(),
        }
    }
}

/// News for the driver to pass on. Not `#[non_exhaustive]` either: an
/// event a driver ignored would leave readers with a stale credential or
/// callers waiting.
#[derive(Debug)]
pub enum Event {
    /// What lock-free readers may serve changed (a refresh, a rejection, a
    /// clock-skew correction that moves the fresh window): hand them this.
    /// `None`: nothing may be served without asking the engine.
    Publish(Option<Snapshot>),
    /// A fetch ended: wake the callers waiting for it; they ask again with
    /// its id and get its credentials or its error.
    Finished {
        /// The fetch.
        fetch: FetchId,
        /// Its outcome.
        result: Result<(), Error>,
    },
}

/// What admitted a fetch (a fleet's slot): the engine holds it until the
/// fetch ends, then drops it, which gives the slot back.
pub struct Permit {
    _slot: Box<dyn Send>,
}

impl Permit {
    /// Wraps whatever releases the slot when dropped.
    pub fn new(slot: impl Send + 'static) -> Self {
        Self {
            _slot: Box::new(slot),
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// An answer from the driver.
#[non_exhaustive]
pub enum Input {
    /// [`Request::Admit`]'s answer: the fetch may start.
    Admitted {
        /// The fetch it answers.
        fetch: FetchId,
        /// Held until the fetch ends.
        permit: Permit,
    },
    /// The HTTP answer to [`Request::Transmit`], whatever its status.
    Response {
        /// The fetch it answers.
        fetch: FetchId,
        /// Status, headers and body.
        response: http::Response<Vec<u8>>,
    },
    /// [`Request::Transmit`] got no answer.
    TransportFailed {
        /// The fetch it answers.
        fetch: FetchId,
        /// What went wrong.
        error: TransportError,
    },
    /// The MFA token provider's answer, untrimmed.
    MfaToken {
        /// The fetch it answers.
        fetch: FetchId,
        /// The code, or the provider's error.
        result: Result<Secret, HookError>,
    },
    /// The custom provider's answer.
    Provided {
        /// The fetch it answers.
        fetch: FetchId,
        /// The credentials, or the provider's error.
        result: Result<CustomCredentials, HookError>,
    },
    /// The source credentials for an STS call.
    SourceCredentials {
        /// The fetch it answers.
        fetch: FetchId,
        /// The credentials, or why there are none.
        result: Result<Arc<Credentials>, Error>,
    },
    /// The content of the file [`Request::ReadFile`] named, or why it could
    /// not be read.
    FileRead {
        /// The fetch it answers.
        fetch: FetchId,
        /// The bytes, or the reason.
        result: Result<Vec<u8>, String>,
    },
    /// Whether [`Request::WriteFile`]'s file was written, or why not.
    FileWritten {
        /// The fetch it answers.
        fetch: FetchId,
        /// Done, or the reason.
        result: Result<(), String>,
    },
    /// How [`Request::RunCommand`]'s command ended, or why it did not run
    /// to the end.
    CommandFinished {
        /// The fetch it answers.
        fetch: FetchId,
        /// Its output, or the reason.
        result: Result<CommandOutput, String>,
    },
}

impl Input {
    /// The fetch answered, and the answer for it (an admission's permit
    /// is not one).
    fn into_parts(self) -> (FetchId, Result<Answer, Permit>) {
        let (fetch, answer) = match self {
            Input::Admitted { fetch, permit } => return (fetch, Err(permit)),
            Input::Response { fetch, response } => (fetch, Answer::Response(response)),
            Input::TransportFailed { fetch, error } => (fetch, Answer::Transport(error)),
            Input::MfaToken { fetch, result } => (fetch, Answer::MfaToken(result)),
            Input::Provided { fetch, result } => (fetch, Answer::Provided(result)),
            Input::SourceCredentials { fetch, result } => (fetch, Answer::Source(result)),
            Input::FileRead { fetch, result } => (fetch, Answer::FileRead(result)),
            Input::FileWritten { fetch, result } => (fetch, Answer::FileWritten(result)),
            Input::CommandFinished { fetch, result } => (fetch, Answer::CommandFinished(result)),
        };
        (fetch, Ok(answer))
    }
}

/// What a lock-free reader needs to serve the fresh path without the
/// engine: the credential and the end of its fresh window.
#[derive(Debug, Clone)]
pub struct Snapshot {
    credentials: Arc<Credentials>,
    fresh_until: Option<SystemTime>,
}

impl Snapshot {
    /// The credentials if `now` is inside their fresh window.
    #[inline]
    pub fn fresh_at(&self, now: SystemTime) -> Option<&Arc<Credentials>> {
        match self.fresh_until {
            Some(until) if now >= until => None,
            _ => Some(&self.credentials),
        }
    }

    /// When the fresh window ends on the local clock; `None` for
    /// credentials that never go stale.
    pub fn fresh_until(&self) -> Option<SystemTime> {
        self.fresh_until
    }

    /// The credentials, fresh or not.
    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Refreshes that produced credentials.
    pub refreshes: u64,
    /// Refreshes that failed.
    pub failed_refreshes: u64,
    /// Callers that had to wait for a refresh.
    pub waits: u64,
    /// Requests and provider calls made on behalf of refreshes.
    pub upstream_calls: u64,
    /// Credentials dropped because a service rejected them as stale
    /// ([`Engine::credentials_rejected`]).
    pub rejected: u64,
    /// The current credential's expiry.
    pub expiration: Option<OffsetDateTime>,
}

/// Why a fetch started, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Prefetch,
    Advisory,
    Demand,
    Background,
    Rejected,
}

struct Current {
    credentials: Arc<Credentials>,
    /// `None` for credentials that never expire.
    windows: Option<Windows>,
}

struct InFlight {
    id: FetchId,
    /// `None` while it waits to be admitted.
    fetch: Option<Fetch>,
    /// What admitted it; dropped with it, which gives the slot back.
    _permit: Option<Permit>,
}

/// The refresh engine of one session. See the [module docs](self).
pub struct Engine {
    method: Method,
    sts_endpoint: Result<StsEndpoint, ConfigError>,
    /// Every fetch waits for [`Request::Admit`]'s answer before it starts.
    admission: bool,
    /// Static stability: an expired credential is served when a refresh
    /// after expiry fails.
    serve_expired: bool,
    policy: RefreshPolicy,
    retry: RetryPolicy,
    defer_refresh: bool,
    skew: ClockSkew,
    /// When the last request went out (local time), for the round trip.
    sent_at: Option<OffsetDateTime>,
    current: Option<Current>,
    in_flight: Option<InFlight>,
    next_id: u64,
    /// The id and result of the last finished fetch.
    last: Option<(FetchId, Result<(), Error>)>,
    backoff: Backoff,
    /// No advisory or background refresh starts before this.
    retry_at: Option<OffsetDateTime>,
    /// Eager mode: when the background refresh starts (AWS's time, like
    /// every time the engine keeps).
    background_at: Option<OffsetDateTime>,
    jitter: Jitter,
    requests: VecDeque<Request>,
    events: VecDeque<Event>,
    metrics: Metrics,
}

impl Engine {
    /// An engine for `config`, checked and completed with the environment
    /// variables `env` looks up, and what its driver needs to know of the
    /// session besides. `seed` drives the jitter.
    pub fn new(
        config: SessionConfig,
        env: &dyn Fn(&str) -> Option<String>,
        now: OffsetDateTime,
        seed: u64,
    ) -> Result<(Self, ResolvedSession), ConfigError> {
        let recorder = Recorder::new(env);
        let files = config.profile_files().clone();
        let Resolved {
            method,
            device,
            policy,
            retry,
            defer_refresh,
            sts_endpoint,
            http,
            mfa_command,
            admission,
            serve_expired,
        } = config.resolve(&|name: &str| recorder.var(name), now)?;
        let session = ResolvedSession {
            fingerprint: recorder.fingerprint(&files),
            thing_name: match &method {
                Method::Iot(request) => request.thing_name.clone(),
                _ => None,
            },
            device,
            sts_endpoint: sts_endpoint.clone(),
            http,
            mfa_command,
        };
        let engine = Self {
            method,
            sts_endpoint,
            admission,
            serve_expired,
            policy,
            retry,
            defer_refresh,
            skew: ClockSkew::default(),
            sent_at: None,
            current: None,
            in_flight: None,
            next_id: 0,
            last: None,
            backoff: Backoff::default(),
            retry_at: None,
            background_at: None,
            jitter: Jitter::new(seed),
            requests: VecDeque::new(),
            events: VecDeque::new(),
            metrics: Metrics::default(),
        };
        Ok((engine, session))
    }

    /// Whether the session refreshes only when asked.
    pub fn defers_refresh(&self) -> bool {
        self.defer_refresh
    }

    /// The counters.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            expiration: self
                .current
                .as_ref()
                .and_then(|c| c.credentials.expiration()),
            ..self.metrics
        }
    }

    /// How far the local clock is behind AWS's (negative: ahead), as
    /// learned from answers' `Date` headers.
    pub fn clock_skew(&self) -> time::Duration {
        self.skew.offset()
    }

    /// AWS's time at local time `now`: what drivers sign other requests
    /// (`whoami`, `sign`) with.
    pub fn aws_time(&self, now: OffsetDateTime) -> OffsetDateTime {
        saturating::shift(now, self.skew.offset())
    }

    /// Local time at AWS's time `at`.
    fn local_time(&self, at: OffsetDateTime) -> OffsetDateTime {
        saturating::shift(at, -self.skew.offset())
    }

    /// The current credential and the end of its fresh window on the local
    /// clock, for lock-free readers.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.current.as_ref().map(|current| Snapshot {
            credentials: current.credentials.clone(),
            fresh_until: current
                .windows
                .map(|w| SystemTime::from(self.local_time(w.fresh_until()))),
        })
    }

    /// Starts the first fetch of an eager session without counting a
    /// waiting caller; wait for the returned id with
    /// [`poll_access`](Self::poll_access).
    pub fn prefetch(&mut self, now: OffsetDateTime) -> FetchId {
        let now = self.aws_time(now);
        match &self.in_flight {
            Some(in_flight) => in_flight.id,
            None => self.start(now, Trigger::Prefetch),
        }
    }

    /// A caller asks for credentials at `now`. A first call passes `None`;
    /// a caller told to wait passes the id it waited for.
    pub fn poll_access(&mut self, now: OffsetDateTime, waited_for: Option<FetchId>) -> Access {
        let now = self.aws_time(now);
        let cached = self
            .current
            .as_ref()
            .map(|c| (c.credentials.clone(), self.freshness(c, now)));
        // The error of the fetch this caller waited for, if it failed.
        let failed = match (waited_for, &self.last) {
            (Some(waited_for), Some((id, Err(error)))) if *id >= waited_for => Some(error.clone()),
            _ => None,
        };
        let idle = self.in_flight.is_none();
        match cached {
            Some((credentials, Freshness::Fresh)) => Access::Ready(credentials),
            Some((credentials, Freshness::Advisory)) => {
                if idle && !self.backing_off(now) {
                    self.start(now, Trigger::Advisory);
                }
                Access::Ready(credentials)
            }
            // Valid still: a recoverable failure does not take it away.
            Some((credentials, Freshness::Mandatory)) => match (failed, self.last_failure()) {
                (Some(error), _) if !recoverable(&error) => Access::Failed(error),
                (Some(_), _) => Access::Ready(credentials),
                (None, Some(last)) if idle && self.backing_off(now) => match recoverable(last) {
                    true => Access::Ready(credentials),
                    false => Access::Failed(self.backing_off_error(last)),
                },
                _ => self.wait(now, waited_for),
            },
            expired_or_none => {
                let expired = expired_or_none.map(|(credentials, _)| credentials);
                let error = match (failed, self.last_failure()) {
                    (Some(error), _) => error,
                    (None, Some(last)) if idle && self.backing_off(now) => {
                        self.backing_off_error(last)
                    }
                    _ => return self.wait(now, waited_for),
                };
                match expired.filter(|_| self.serve_expired) {
                    Some(credentials) => Access::Ready(credentials),
                    None => Access::Failed(error),
                }
            }
        }
    }

    /// The caller waits for the fetch in flight, started if need be.
    fn wait(&mut self, now: OffsetDateTime, waited_for: Option<FetchId>) -> Access {
        let id = match &self.in_flight {
            Some(in_flight) => in_flight.id,
            None => self.start(now, Trigger::Demand),
        };
        if waited_for.is_none() {
            self.metrics.waits += 1;
        }
        Access::Pending(id)
    }

    /// Whether a failed refresh's backoff forbids another attempt at `now`.
    fn backing_off(&self, now: OffsetDateTime) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// The last refresh's error, if it failed.
    fn last_failure(&self) -> Option<&Error> {
        match &self.last {
            Some((_, Err(error))) => Some(error),
            _ => None,
        }
    }

    /// What a caller gets while the session backs off with nothing to
    /// serve it.
    fn backing_off_error(&self, last: &Error) -> Error {
        Error::BackingOff {
            last: Arc::new(last.clone()),
            retry_at: self.retry_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// A service refused a request signed with `access_key_id`, for
    /// `rejection` (see [`crate::rejection`]). Returns whether a retry
    /// would be signed with other credentials: when the session's
    /// credential has changed since the request was signed, or when it is
    /// the rejected one and has expired, in which case it is dropped, a
    /// refresh starts and callers wait for it. Comparing the key makes many
    /// requests rejected for one credential cost one refresh.
    pub fn credentials_rejected(
        &mut self,
        now: OffsetDateTime,
        access_key_id: &str,
        rejection: Rejection,
    ) -> bool {
        let is_current = self
            .current
            .as_ref()
            .is_some_and(|c| c.credentials.access_key_id() == access_key_id);
        if !is_current {
            return true;
        }
        match rejection {
            Rejection::Expired => {
                tracing::info!(target: "refresh_session", access_key_id, "credentials rejected as expired; refreshing");
                self.current = None;
                self.metrics.rejected += 1;
                self.events.push_back(Event::Publish(None));
                let now = self.aws_time(now);
                // A backoff holds: the source is not asked again before it.
                if self.in_flight.is_none() && !self.backing_off(now) {
                    self.start(now, Trigger::Rejected);
                }
                true
            }
            Rejection::UnknownKey => false,
        }
    }

    /// The next piece of work for the driver.
    pub fn poll_request(&mut self) -> Option<Request> {
        let request = self.requests.pop_front();
        if self.requests.is_empty() {
            // Requests come a few per refresh; an idle session of a fleet
            // should not keep a kilobyte of queue for them.
            self.requests = VecDeque::new();
        }
        request
    }

    /// Whether [`poll_request`](Self::poll_request) has something, so a
    /// caller knows to wake or start its driver.
    pub fn has_request(&self) -> bool {
        !self.requests.is_empty()
    }

    /// The next piece of news for the driver. Drain it after every call
    /// that takes `&mut self`.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        event
    }

    /// The driver could not finish the fetch in flight (`cause` says why):
    /// it fails with [`Error::Aborted`], its queued requests are dropped,
    /// and the next caller starts a new one. Does nothing when no fetch is
    /// in flight.
    pub fn abort(&mut self, now: OffsetDateTime, cause: Abort) {
        let Some(id) = self.in_flight.as_ref().map(|f| f.id) else {
            return;
        };
        self.requests.retain(|request| request.fetch() != id);
        self.finish(self.aws_time(now), id, Err(Error::Aborted(cause)));
    }

    /// Feeds in the driver's answer to an earlier request. Answers for a
    /// fetch that is no longer running are ignored.
    pub fn handle_input(&mut self, now: OffsetDateTime, input: Input) {
        let (id, answer) = input.into_parts();
        if self.in_flight.as_ref().is_none_or(|f| f.id != id) {
            tracing::debug!(target: "refresh_session", ?id, "ignoring an answer for a fetch that is not running");
            return;
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(permit) => return self.admitted(now, id, permit),
        };
        let skew_corrected = match &answer {
            Answer::Response(response) => {
                let sent = self.sent_at.unwrap_or(now);
                match self.skew.observe(now, sent, response) {
                    Ok(corrected) => corrected,
                    Err(implausible) => {
                        let error = Error::InvalidResponse {
                            service: self.method.origin(),
                            status: response.status().as_u16(),
                            problem: implausible.problem(),
                        };
                        return self.finish(self.aws_time(now), id, Err(error));
                    }
                }
            }
            _ => false,
        };
        if skew_corrected && self.current.is_some() {
            self.events.push_back(Event::Publish(self.snapshot()));
        }
        let now = self.aws_time(now);
        let Some(fetch) = self.in_flight.as_mut().and_then(|f| f.fetch.as_mut()) else {
            tracing::warn!(target: "refresh_session", ?id, "ignoring an answer for a fetch not yet admitted");
            return;
        };
        let cx = Context::new(
            &self.sts_endpoint,
            &self.retry,
            now,
            self.skew.offset(),
            self.jitter.next_unit(),
            skew_corrected,
        );
        match fetch.advance(&mut self.method, cx, answer) {
            Some(progress) => self.apply(now, id, progress),
            None => {
                tracing::warn!(target: "refresh_session", ?id, "ignoring an answer the fetch did not ask for");
            }
        }
    }

    /// When the driver should call [`handle_timeout`](Self::handle_timeout)
    /// next, if ever.
    pub fn poll_timeout(&self) -> Option<OffsetDateTime> {
        let at = match &self.in_flight {
            Some(in_flight) => in_flight.fetch.as_ref().and_then(Fetch::wake_at),
            None => self.background_at,
        };
        at.map(|at| self.local_time(at))
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come: a
    /// retry of the fetch in flight, or an eager session's background
    /// refresh.
    pub fn handle_timeout(&mut self, now: OffsetDateTime) {
        let now = self.aws_time(now);
        if let Some(in_flight) = &mut self.in_flight {
            let Some(fetch) = &mut in_flight.fetch else {
                return;
            };
            let cx = Context::new(
                &self.sts_endpoint,
                &self.retry,
                now,
                self.skew.offset(),
                self.jitter.next_unit(),
                false,
            );
            let id = in_flight.id;
            if let Some(progress) = fetch.on_timeout(&mut self.method, cx) {
                self.apply(now, id, progress);
            }
        } else if self.background_at.is_some_and(|at| now >= at) {
            self.background_at = None;
            self.start(now, Trigger::Background);
        }
    }

    fn freshness(&self, current: &Current, now: OffsetDateTime) -> Freshness {
        match &current.windows {
            Some(windows) => windows.freshness(now),
            None => Freshness::Fresh,
        }
    }

    fn start(&mut self, now: OffsetDateTime, trigger: Trigger) -> FetchId {
        let id = FetchId(self.next_id);
        self.next_id += 1;
        tracing::debug!(target: "refresh_session", ?id, ?trigger, "refresh started");
        self.in_flight = Some(InFlight {
            id,
            fetch: None,
            _permit: None,
        });
        if self.admission {
            self.requests.push_back(Request::Admit { fetch: id });
        } else {
            self.begin(now, id);
        }
        id
    }

    /// The fetch waiting for admission may start, holding `permit`.
    fn admitted(&mut self, now: OffsetDateTime, id: FetchId, permit: Permit) {
        match &mut self.in_flight {
            Some(in_flight) if in_flight.fetch.is_none() => in_flight._permit = Some(permit),
            _ => return,
        }
        self.begin(self.aws_time(now), id);
    }

    /// Takes the in-flight fetch's first step.
    fn begin(&mut self, now: OffsetDateTime, id: FetchId) {
        let cx = Context::new(
            &self.sts_endpoint,
            &self.retry,
            now,
            self.skew.offset(),
            self.jitter.next_unit(),
            false,
        );
        let (fetch, progress) = Fetch::start(&mut self.method, cx);
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.fetch = Some(fetch);
        }
        self.apply(now, id, progress);
    }

    fn apply(&mut self, now: OffsetDateTime, fetch: FetchId, progress: Progress) {
        let request = match progress {
            Progress::Done(result) => return self.finish(now, fetch, result),
            Progress::Wait => return,
            Progress::Need(Need::Transmit(request, tls)) => {
                let request = *request;
                self.sent_at = Some(self.local_time(now));
                self.metrics.upstream_calls += 1;
                Request::Transmit {
                    fetch,
                    request,
                    tls,
                }
            }
            Progress::Need(Need::Provider) => {
                self.metrics.upstream_calls += 1;
                Request::CallProvider { fetch }
            }
            Progress::Need(Need::MfaToken { serial }) => Request::MfaToken {
                fetch,
                serial_number: serial,
            },
            Progress::Need(Need::Source { refused }) => {
                Request::SourceCredentials { fetch, refused }
            }
            Progress::Need(Need::ReadFile(path)) => Request::ReadFile { fetch, path },
            Progress::Need(Need::WriteFile(path, contents)) => Request::WriteFile {
                fetch,
                path,
                contents,
            },
            Progress::Need(Need::RunCommand(command)) => {
                self.metrics.upstream_calls += 1;
                Request::RunCommand { fetch, command }
            }
        };
        self.requests.push_back(request);
    }

    fn finish(&mut self, now: OffsetDateTime, id: FetchId, result: Result<Credentials, Error>) {
        self.in_flight = None;
        let result = result.and_then(|credentials| match credentials.expiration() {
            Some(expiration) if expiration <= now => Err(Error::ExpiredCredentials {
                origin: self.method.origin(),
                expiration,
                now,
            }),
            _ => Ok(credentials),
        });
        match result {
            Ok(credentials) => self.succeed(now, id, credentials),
            Err(error) => self.fail(now, id, error),
        }
    }

    fn succeed(&mut self, now: OffsetDateTime, id: FetchId, credentials: Credentials) {
        let credentials = Arc::new(credentials);
        let windows = credentials
            .expiration()
            .map(|expiration| self.policy.windows(now, expiration));
        tracing::info!(
            target: "refresh_session",
            access_key_id = credentials.access_key_id(),
            expiration = ?credentials.expiration(),
            "credentials refreshed"
        );
        self.metrics.refreshes += 1;
        self.backoff.reset();
        self.retry_at = None;
        self.background_at = match (&windows, self.defer_refresh) {
            (Some(windows), false) => Some(windows.background_refresh_at(self.jitter.next_unit())),
            _ => None,
        };
        self.current = Some(Current {
            credentials,
            windows,
        });
        self.last = Some((id, Ok(())));
        self.events.push_back(Event::Publish(self.snapshot()));
        self.events.push_back(Event::Finished {
            fetch: id,
            result: Ok(()),
        });
    }

    fn fail(&mut self, now: OffsetDateTime, id: FetchId, error: Error) {
        tracing::warn!(target: "refresh_session", %error, "refresh failed");
        self.metrics.failed_refreshes += 1;
        let recoverable = recoverable(&error);
        let windows = self.current.as_ref().map(|c| c.windows);
        // What is left to serve, and when the regime changes: a backoff
        // never outlasts the credential it serves.
        let (holding, until) = match windows {
            Some(None) => (Holding::Serving, None),
            // Once more at the mandatory window, where callers wait: a
            // short-lived credential gets a second try before it expires.
            Some(Some(w)) if now < w.mandatory_at() => (Holding::Serving, Some(w.mandatory_at())),
            Some(Some(w)) if now < w.expires_at() && recoverable => {
                (Holding::Serving, Some(w.expires_at()))
            }
            Some(Some(w)) if now < w.expires_at() => (Holding::Withheld, Some(w.expires_at())),
            _ => (Holding::Nothing, None),
        };
        let delay = self.backoff.fail(recoverable, holding, &mut self.jitter);
        let retry_at = saturating::add(now, delay);
        self.retry_at = Some(until.map_or(retry_at, |until| retry_at.min(until)));
        if !self.defer_refresh {
            self.background_at = self.retry_at;
        }
        self.last = Some((id, Err(error.clone())));
        self.events.push_back(Event::Finished {
            fetch: id,
            result: Err(error),
        });
    }
}

/// Whether trying again later may fix a refresh's failure: throttling, 5xx,
/// transport errors, an answer that had already expired.
fn recoverable(error: &Error) -> bool {
    error.is_retryable() || matches!(error, Error::ExpiredCredentials { .. })
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("method", &self.method.origin())
            .field("defer_refresh", &self.defer_refresh)
            .field("in_flight", &self.in_flight.as_ref().map(|f| f.id))
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}
