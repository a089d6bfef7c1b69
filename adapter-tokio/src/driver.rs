//! The task side of an async session: the lock-free fresh path, callers
//! waiting on a `Notify`, and the task that performs what the engine asks
//! for.
//!
//! Callers never do IO and never hold the lock across an `.await`. A
//! refresh runs in a task of its own: in deferred mode one is spawned when
//! the engine has work and none is running, and it ends when the work is
//! done; in eager mode one background task lives as long as the session and
//! also sleeps until the engine's next timeout. A caller that stops
//! waiting (its future dropped) leaves the refresh running for the others.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use refresh_session_core::engine::{Access, Engine, FetchId, Input, Metrics, Output};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::sts::StsEndpoint;
use refresh_session_core::{Clock, ConfigError, Credentials, Error};
use refresh_session_io::FreshCell;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::hooks::Hooks;
use crate::runtime::{BoxFuture, Runtime};
use crate::transport::HttpTransport;

/// What the session handles and the refresh task share.
pub(crate) struct Shared {
    fresh: FreshCell,
    state: Mutex<State>,
    /// Wakes waiting callers: a refresh finished.
    finished: Notify,
    /// Wakes the refresh task: there is work, or the session closed. Apart
    /// from `finished` so that a caller never wakes itself.
    work: Notify,
    hooks: Hooks,
    clock: Arc<dyn Clock>,
    pub(crate) transport: Arc<dyn HttpTransport>,
    runtime: Arc<dyn Runtime>,
    eager: bool,
}

struct State {
    engine: Engine,
    /// A refresh task is running (always, in eager mode).
    driving: bool,
    /// The last handle is gone: the refresh task stops.
    closed: bool,
}

/// What the refresh task does next.
enum Step {
    Work(Box<Output>),
    Sleep(Option<OffsetDateTime>),
    Stop,
}

impl Shared {
    pub(crate) fn new(
        engine: Engine,
        clock: Arc<dyn Clock>,
        hooks: Hooks,
        transport: Arc<dyn HttpTransport>,
        runtime: Arc<dyn Runtime>,
    ) -> Arc<Self> {
        Arc::new(Self {
            fresh: FreshCell::default(),
            eager: !engine.defers_refresh(),
            state: Mutex::new(State {
                engine,
                driving: false,
                closed: false,
            }),
            finished: Notify::new(),
            work: Notify::new(),
            hooks,
            clock,
            transport,
            runtime,
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

    /// Credentials valid at the first poll. Fresh and advisory paths
    /// complete on that poll.
    #[inline(always)]
    pub(crate) fn credentials(self: &Arc<Self>) -> CredentialsFuture<'_> {
        CredentialsFuture {
            shared: self,
            waiting: None,
        }
    }

    /// Out of line, so that a fresh poll is small enough to be inlined into
    /// the caller's future.
    #[cold]
    #[inline(never)]
    fn waiting(self: &Arc<Self>) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        Box::pin(self.wait(None))
    }

    /// The cached credential while it is fresh: a lock-free load.
    #[inline]
    pub(crate) fn fresh(&self) -> Option<Arc<Credentials>> {
        self.fresh.fresh(&*self.clock)
    }

    /// A service rejected `access_key_id`; see
    /// [`Engine::credentials_rejected`].
    pub(crate) fn rejected(self: &Arc<Self>, access_key_id: &str, rejection: Rejection) -> bool {
        let mut state = self.lock();
        let retry = state
            .engine
            .credentials_rejected(self.now(), access_key_id, rejection);
        self.publish(&state);
        self.wake_driver(&mut state);
        retry
    }

    /// Hands the engine's current credential to lock-free readers. Under
    /// the lock, so that an older snapshot never overwrites a newer one.
    fn publish(&self, state: &State) {
        self.fresh.publish(state.engine.snapshot(), &*self.clock);
    }

    /// Starts the background task and the first fetch of an eager session,
    /// and waits for that fetch.
    pub(crate) async fn start_eager(self: &Arc<Self>) -> Result<(), Error> {
        let first = {
            let mut state = self.lock();
            state.driving = true;
            state.engine.prefetch(self.now())
        };
        self.runtime.spawn(Box::pin(Arc::clone(self).drive()));
        self.wait(Some(first)).await.map(|_| ())
    }

    /// Stops the refresh task; called when the last handle drops.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_waiters();
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

    /// The executor the session runs on.
    #[cfg(feature = "mqtt")]
    pub(crate) fn runtime(&self) -> &dyn Runtime {
        &*self.runtime
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.lock().engine.metrics()
    }

    pub(crate) fn sts_endpoint(&self) -> Result<StsEndpoint, ConfigError> {
        self.lock().engine.sts_endpoint().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The engine never panics and user code runs unlocked, so a poisoned
        // lock still guards a consistent engine.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the engine until it hands out credentials or an error, waiting
    /// for the refresh task between asks.
    async fn wait(
        self: &Arc<Self>,
        mut waited_for: Option<FetchId>,
    ) -> Result<Arc<Credentials>, Error> {
        loop {
            // Register for the wake-up before asking, so that a refresh
            // finishing in between is not missed.
            let mut finished = pin!(self.finished.notified());
            finished.as_mut().enable();
            let access = {
                let mut state = self.lock();
                let access = state.engine.poll_access(self.now(), waited_for);
                self.wake_driver(&mut state);
                access
            };
            match access {
                Access::Ready(credentials) => return Ok(credentials),
                Access::Failed(error) => return Err(error),
                Access::Pending(id) => {
                    waited_for = Some(id);
                    finished.await;
                }
            }
        }
    }

    /// Makes sure a refresh task will take the engine's queued work.
    fn wake_driver(self: &Arc<Self>, state: &mut State) {
        if !state.engine.has_output() {
            return;
        }
        if state.driving {
            self.work.notify_waiters();
            return;
        }
        state.driving = true;
        self.runtime.spawn(Box::pin(Arc::clone(self).drive()));
    }

    /// Performs the engine's work until there is none and no retry is
    /// pending (deferred mode), or
    /// the session closes (eager mode).
    async fn drive(self: Arc<Self>) {
        loop {
            let mut work = pin!(self.work.notified());
            work.as_mut().enable();
            match self.next_step() {
                Step::Work(output) => self.perform(*output).await,
                Step::Sleep(None) => work.await,
                Step::Sleep(Some(at)) => {
                    let sleep = Duration::try_from(at - self.now()).unwrap_or_default();
                    first(work, self.runtime.sleep(sleep)).await;
                }
                Step::Stop => return,
            }
        }
    }

    fn next_step(&self) -> Step {
        let mut state = self.lock();
        if state.closed {
            state.driving = false;
            return Step::Stop;
        }
        let now = self.now();
        if state.engine.poll_timeout().is_some_and(|at| at <= now) {
            state.engine.handle_timeout(now);
        }
        match state.engine.poll_output() {
            Some(output) => Step::Work(Box::new(output)),
            // A deferred session's task stays while a retry is pending.
            None if self.eager || state.engine.poll_timeout().is_some() => {
                Step::Sleep(state.engine.poll_timeout())
            }
            None => {
                state.driving = false;
                Step::Stop
            }
        }
    }

    /// Does one piece of work and feeds the answer back.
    async fn perform(&self, output: Output) {
        let input = match output {
            // A failed refresh may have corrected the clock skew, which
            // moves the snapshot's window too.
            Output::Refreshed { .. } | Output::RefreshFailed { .. } => {
                self.publish(&self.lock());
                self.finished.notify_waiters();
                return;
            }
            Output::Transmit {
                fetch,
                request,
                tls,
            } => match self.transport.send(request, tls).await {
                Ok(response) => Input::Response { fetch, response },
                Err(error) => Input::TransportFailed { fetch, error },
            },
            Output::MfaToken {
                fetch,
                serial_number,
            } => {
                let result = self.hooks.mfa_token(&serial_number, &*self.runtime).await;
                Input::MfaToken { fetch, result }
            }
            Output::CallProvider { fetch } => {
                let result = self.hooks.provide(&*self.runtime).await;
                Input::Provided { fetch, result }
            }
            Output::SourceCredentials { fetch } => {
                let result = self.hooks.source().await;
                Input::SourceCredentials { fetch, result }
            }
            Output::ReadFile { fetch, path } => {
                let result = blocking_io(&*self.runtime, move || {
                    refresh_session_io::file::read(&path)
                })
                .await;
                Input::FileRead { fetch, result }
            }
            Output::RunCommand { fetch, command } => {
                let result = blocking_io(&*self.runtime, move || {
                    refresh_session_io::command::run(&command)
                })
                .await;
                Input::CommandFinished { fetch, result }
            }
            other => {
                tracing::error!(target: "refresh_session", ?other, "this driver does not know the engine's request");
                return;
            }
        };
        let now = self.now();
        self.lock().engine.handle_input(now, input);
    }
}

/// The future of [`Shared::credentials`]: its first poll takes a fresh
/// credential without a state machine (nothing is stored in the future but
/// the session); otherwise it awaits the wait, boxed.
pub(crate) struct CredentialsFuture<'a> {
    shared: &'a Arc<Shared>,
    waiting: Option<BoxFuture<'a, Result<Arc<Credentials>, Error>>>,
}

impl Future for CredentialsFuture<'_> {
    type Output = Result<Arc<Credentials>, Error>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let waiting = match &mut this.waiting {
            Some(waiting) => waiting,
            None => match this.shared.fresh() {
                Some(credentials) => return Poll::Ready(Ok(credentials)),
                None => this.waiting.insert(this.shared.waiting()),
            },
        };
        waiting.as_mut().poll(cx)
    }
}

/// Runs blocking IO on the runtime's blocking threads; a panic there is
/// reported as the IO's error.
async fn blocking_io<T: Send + 'static>(
    runtime: &dyn Runtime,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    crate::hooks::blocking("file or command", runtime, move || Ok(work()))
        .await
        .map_err(|e| e.to_string())?
}

/// Completes when either future does.
async fn first(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
