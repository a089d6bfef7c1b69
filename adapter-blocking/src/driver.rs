//! The thread side of a session: the lock-free fresh path, callers waiting
//! on a condition variable, and the loop that performs what the engine asks
//! for.
//!
//! Callers never do IO. A refresh runs on a driver thread: in deferred
//! mode one is started when the engine has work and none is running, and it
//! ends when the work is done; in eager mode one background thread lives as
//! long as the session and also sleeps until the engine's next timeout.
//! The lock is never held across IO or user code.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use refresh_session_core::engine::{Access, Engine, FetchId, Input, Metrics, Output};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::{Clock, ConfigError, Credentials, Error};
use refresh_session_io::FreshCell;
use time::OffsetDateTime;

use crate::hooks::Hooks;
use crate::transport::Transport;

const THREAD_NAME: &str = "refresh-session";

/// What the session handles and its driver threads share.
pub(crate) struct Shared {
    fresh: FreshCell,
    state: Mutex<State>,
    /// Wakes waiting callers: a refresh finished.
    finished: Condvar,
    /// Wakes the background thread: there is work, or the session closed.
    /// Apart from `finished` so that callers do not wake each other.
    work: Condvar,
    hooks: Hooks,
    clock: Arc<dyn Clock>,
    pub(crate) transport: Transport,
    eager: bool,
}

struct State {
    engine: Engine,
    /// A driver thread is running (always, in eager mode).
    driving: bool,
    /// The last handle is gone: drivers stop.
    closed: bool,
}

type Guard<'a> = MutexGuard<'a, State>;

impl Shared {
    pub(crate) fn new(
        engine: Engine,
        clock: Arc<dyn Clock>,
        hooks: Hooks,
        transport: Transport,
    ) -> Arc<Self> {
        Arc::new(Self {
            fresh: FreshCell::default(),
            eager: !engine.defers_refresh(),
            state: Mutex::new(State {
                engine,
                driving: false,
                closed: false,
            }),
            finished: Condvar::new(),
            work: Condvar::new(),
            hooks,
            clock,
            transport,
        })
    }

    /// The session clock's time, as the engine takes it.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.clock.now())
    }

    /// AWS's time as far as the engine knows it: what other requests
    /// (`whoami`, `sign`) are signed with.
    pub(crate) fn aws_now(&self) -> OffsetDateTime {
        let now = self.now();
        self.lock().engine.aws_time(now)
    }

    /// Credentials valid now: from the snapshot without a lock while they
    /// are fresh, else through the engine.
    #[inline(always)]
    pub(crate) fn credentials(self: &Arc<Self>) -> Result<Arc<Credentials>, Error> {
        match self.fresh.fresh(&*self.clock) {
            Some(credentials) => Ok(credentials),
            None => self.through_engine(),
        }
    }

    /// Out of line, so that the fresh path is small enough to be inlined
    /// into the caller.
    #[cold]
    #[inline(never)]
    fn through_engine(self: &Arc<Self>) -> Result<Arc<Credentials>, Error> {
        self.wait(self.lock(), None)
    }

    /// A service rejected `access_key_id`; see
    /// [`Engine::credentials_rejected`].
    pub(crate) fn rejected(self: &Arc<Self>, access_key_id: &str, rejection: Rejection) -> bool {
        let mut state = self.lock();
        let retry = state
            .engine
            .credentials_rejected(self.now(), access_key_id, rejection);
        self.fresh.publish(state.engine.snapshot(), &*self.clock);
        drop(self.wake_driver(state));
        retry
    }

    /// Starts the background thread and the first fetch of an eager
    /// session, and waits for that fetch.
    pub(crate) fn start_eager(self: &Arc<Self>) -> Result<(), Error> {
        let mut state = self.lock();
        state.driving = true;
        let shared = Arc::clone(self);
        thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || shared.drive())
            .map_err(|e| {
                ConfigError::new(
                    "defer_refresh",
                    format!("the background refresh thread could not be started ({e}); use defer_refresh(true)"),
                )
            })?;
        let id = state.engine.prefetch(self.now());
        self.wait(state, Some(id)).map(|_| ())
    }

    /// Stops the drivers; called when the last handle drops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    pub(crate) fn defers_refresh(&self) -> bool {
        !self.eager
    }

    /// Checks MQTT options against the session (see [`Engine::mqtt`]).
    #[cfg(feature = "mqtt")]
    pub(crate) fn mqtt(
        &self,
        options: refresh_session_core::mqtt::Mqtt,
    ) -> Result<refresh_session_core::mqtt::MqttPlan, ConfigError> {
        self.lock().engine.mqtt(options)
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.lock().engine.metrics()
    }

    pub(crate) fn sts_endpoint(
        &self,
    ) -> Result<refresh_session_core::sts::StsEndpoint, ConfigError> {
        self.lock().engine.sts_endpoint().cloned()
    }

    fn lock(&self) -> Guard<'_> {
        // The engine never panics and user code runs unlocked, so a poisoned
        // lock still guards a consistent engine.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the engine until it hands out credentials or an error, waiting
    /// for the driver between asks.
    fn wait<'a>(
        self: &'a Arc<Self>,
        mut state: Guard<'a>,
        mut waited_for: Option<FetchId>,
    ) -> Result<Arc<Credentials>, Error> {
        loop {
            let access = state.engine.poll_access(self.now(), waited_for);
            state = self.wake_driver(state);
            match access {
                Access::Ready(credentials) => return Ok(credentials),
                Access::Failed(error) => return Err(error),
                Access::Pending(id) => {
                    waited_for = Some(id);
                    state = self
                        .finished
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Makes sure a driver will take the engine's queued work.
    fn wake_driver<'a>(self: &'a Arc<Self>, mut state: Guard<'a>) -> Guard<'a> {
        if !state.engine.has_output() {
            return state;
        }
        if state.driving {
            self.work.notify_all();
            return state;
        }
        state.driving = true;
        let shared = Arc::clone(self);
        match thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || shared.drive())
        {
            Ok(_) => state,
            Err(error) => {
                tracing::warn!(target: "refresh_session", %error, "no refresh thread; refreshing on the caller's thread");
                drop(state);
                Arc::clone(self).drive();
                self.lock()
            }
        }
    }

    /// Performs the engine's work until there is none and no retry is
    /// pending (deferred mode), or
    /// the session closes (eager mode).
    fn drive(self: Arc<Self>) {
        let mut state = self.lock();
        while !state.closed {
            let now = self.now();
            if state.engine.poll_timeout().is_some_and(|at| at <= now) {
                state.engine.handle_timeout(now);
            }
            if let Some(output) = state.engine.poll_output() {
                state = self.perform(state, output);
                continue;
            }
            // A deferred session's driver stays while a retry is pending.
            if !self.eager && state.engine.poll_timeout().is_none() {
                break;
            }
            state = match state.engine.poll_timeout() {
                Some(at) => {
                    let sleep = Duration::try_from(at - now).unwrap_or_default();
                    self.work
                        .wait_timeout(state, sleep)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        state.driving = false;
    }

    /// Does one piece of work with the lock released, and feeds the answer
    /// back.
    fn perform<'a>(&'a self, state: Guard<'a>, output: Output) -> Guard<'a> {
        let input = match output {
            // A failed refresh may have corrected the clock skew, which
            // moves the snapshot's window too.
            Output::Refreshed { .. } | Output::RefreshFailed { .. } => {
                self.fresh.publish(state.engine.snapshot(), &*self.clock);
                self.finished.notify_all();
                return state;
            }
            Output::Transmit {
                fetch,
                request,
                tls,
            } => {
                drop(state);
                match self.transport.send(request, tls) {
                    Ok(response) => Input::Response { fetch, response },
                    Err(error) => Input::TransportFailed { fetch, error },
                }
            }
            Output::MfaToken {
                fetch,
                serial_number,
            } => {
                drop(state);
                let result = self.hooks.mfa_token(&serial_number);
                Input::MfaToken { fetch, result }
            }
            Output::CallProvider { fetch } => {
                drop(state);
                let result = self.hooks.provide();
                Input::Provided { fetch, result }
            }
            Output::SourceCredentials { fetch } => {
                drop(state);
                let result = self.hooks.source();
                Input::SourceCredentials { fetch, result }
            }
            Output::ReadFile { fetch, path } => {
                drop(state);
                let result = refresh_session_io::file::read(&path);
                Input::FileRead { fetch, result }
            }
            Output::RunCommand { fetch, command } => {
                drop(state);
                let result = refresh_session_io::command::run(&command);
                Input::CommandFinished { fetch, result }
            }
            other => {
                tracing::error!(target: "refresh_session", ?other, "this driver does not know the engine's request");
                return state;
            }
        };
        let mut state = self.lock();
        state.engine.handle_input(self.now(), input);
        state
    }
}
