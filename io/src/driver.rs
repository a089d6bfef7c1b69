//! The one refresh driver every adapter runs: the engine behind a lock, the
//! lock-free fresh path, and the rules of who does what.
//!
//! Callers never do IO: they ask with [`Driver::access`] and, told to wait,
//! wait for the adapter's "a fetch finished" signal and ask again. A
//! [`Worker`] (a thread, a task) performs what the engine asks for, with
//! the lock released, and feeds the answers back. An adapter supplies what
//! really differs through [`Backend`]: how callers and the worker are woken
//! and how a worker is started; and it performs each [`Request`] its own
//! way (blocking, async).
//!
//! Nothing leaves a caller waiting: a worker that is dropped before it
//! finishes (its runtime shut down, its task cancelled, a panic unwound
//! it) or that could not start aborts the fetch in flight, and every
//! waiter gets the [`Abort`] as its error. The lock is never held across
//! IO or user code, and is never left poisoned.
//!
//! [`Request`]: refresh_session_core::engine::Request

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use refresh_session_core::engine::{Access, Engine, Event, FetchId, Input, Request};
use refresh_session_core::error::{Abort, Panicked};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::{Clock, Credentials};
use time::OffsetDateTime;

use crate::FreshCell;

/// What an adapter supplies to the driver.
pub trait Backend: Send + Sync + Sized + 'static {
    /// What the worker is, for errors: "refresh thread", "refresh task".
    const WORKER: &'static str;

    /// Wakes every caller waiting for a fetch to finish.
    fn wake_callers(&self);

    /// Wakes the worker: there is work, or the session closed.
    fn wake_worker(&self);

    /// Runs `worker` on a thread or task of its own until its
    /// [`next_step`](Worker::next_step) says stop. If it cannot start,
    /// call [`Worker::stop`] with [`Abort::NotStarted`]; if it is dropped
    /// unfinished, the fetch in flight is aborted for it.
    fn start_worker(&self, worker: Worker<Self>);
}

/// A session's engine, fresh path and backend.
pub struct Driver<B: Backend> {
    fresh: FreshCell,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    eager: bool,
    backend: B,
}

struct State {
    engine: Engine,
    /// A worker is running (in eager mode, for as long as the session).
    working: bool,
    /// The last handle is gone: the worker stops.
    closed: bool,
}

/// What to do after the engine has been called, once the lock is released.
#[derive(Default)]
#[must_use]
struct Wakes {
    callers: bool,
    worker: bool,
    start: bool,
}

/// What the worker does next.
#[derive(Debug)]
pub enum Step {
    /// Perform this request and give the answer to [`Worker::answer`] (or
    /// [`Worker::abort`] if it cannot be answered).
    Perform(Box<Request>),
    /// Wait until woken, or at most this long.
    Sleep(Option<Duration>),
    /// Return: nothing is left to do.
    Stop,
}

impl<B: Backend> Driver<B> {
    /// A driver for `engine`, read at `clock`.
    pub fn new(engine: Engine, clock: Arc<dyn Clock>, backend: B) -> Arc<Self> {
        Arc::new(Self {
            fresh: FreshCell::default(),
            eager: !engine.defers_refresh(),
            state: Mutex::new(State {
                engine,
                working: false,
                closed: false,
            }),
            clock,
            backend,
        })
    }

    /// The adapter's part.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The session clock's time, as the engine takes it.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.clock.now())
    }

    /// AWS's time as far as the engine knows it: what other requests
    /// (`whoami`, `sign`) are signed with.
    pub fn aws_now(&self) -> OffsetDateTime {
        let now = self.now();
        self.lock().engine.aws_time(now)
    }

    /// The cached credential while it is fresh: a lock-free load.
    #[inline]
    pub fn fresh(&self) -> Option<Arc<Credentials>> {
        self.fresh.fresh(&*self.clock)
    }

    /// Asks the engine for credentials (see [`Engine::poll_access`]) and
    /// makes sure a worker takes what it asked for. On
    /// [`Access::Pending`], wait for [`Backend::wake_callers`] (registered
    /// before this call, so that a fetch finishing in between is not
    /// missed) and ask again with the id.
    pub fn access(self: &Arc<Self>, waited_for: Option<FetchId>) -> Access {
        let now = self.now();
        self.update(|engine| engine.poll_access(now, waited_for))
    }

    /// A service rejected `access_key_id`; see
    /// [`Engine::credentials_rejected`].
    pub fn rejected(self: &Arc<Self>, access_key_id: &str, rejection: Rejection) -> bool {
        let now = self.now();
        self.update(|engine| engine.credentials_rejected(now, access_key_id, rejection))
    }

    /// Starts an eager session: its worker, which lives as long as the
    /// session, and the first fetch. Wait for the returned id as for
    /// [`Access::Pending`].
    pub fn prefetch(self: &Arc<Self>) -> FetchId {
        let now = self.now();
        self.update(|engine| engine.prefetch(now))
    }

    /// Whether the session refreshes only when asked.
    pub fn defers_refresh(&self) -> bool {
        !self.eager
    }

    /// Reads the engine (metrics, configuration).
    pub fn engine<T>(&self, read: impl FnOnce(&Engine) -> T) -> T {
        read(&self.lock().engine)
    }

    /// Stops the worker; called when the last handle drops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.backend.wake_worker();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The engine never panics and no user code runs under the lock, so
        // a poisoned lock still guards a consistent engine.
        self.state.lock().unwrap_or_else(|poisoned| {
            self.state.clear_poison();
            poisoned.into_inner()
        })
    }

    /// Calls the engine, passes its events on under the lock (so that an
    /// older snapshot never overwrites a newer one), then wakes whom it
    /// must with the lock released.
    fn update<T>(self: &Arc<Self>, call: impl FnOnce(&mut Engine) -> T) -> T {
        let mut state = self.lock();
        let result = call(&mut state.engine);
        let wakes = self.after_call(&mut state);
        drop(state);
        self.wake(wakes);
        result
    }

    /// Passes the engine's events on and sees to its requests.
    fn after_call(&self, state: &mut State) -> Wakes {
        let mut wakes = Wakes {
            callers: self.pass_events(state),
            ..Wakes::default()
        };
        if state.engine.has_request() && !state.closed {
            if state.working {
                wakes.worker = true;
            } else {
                state.working = true;
                wakes.start = true;
            }
        }
        // An eager session's worker is there from the first fetch on.
        if self.eager && !state.working && !state.closed {
            state.working = true;
            wakes.start = true;
        }
        wakes
    }

    /// Publishes what the engine says to; returns whether a fetch finished.
    fn pass_events(&self, state: &mut State) -> bool {
        let mut finished = false;
        while let Some(event) = state.engine.poll_event() {
            match event {
                Event::Publish(snapshot) => self.fresh.publish(snapshot, &*self.clock),
                Event::Finished { .. } => finished = true,
            }
        }
        finished
    }

    fn wake(self: &Arc<Self>, wakes: Wakes) {
        if wakes.callers {
            self.backend.wake_callers();
        }
        if wakes.worker {
            self.backend.wake_worker();
        }
        if wakes.start {
            self.backend.start_worker(Worker {
                driver: Arc::clone(self),
                finished: false,
            });
        }
    }
}

/// The one worker of a session: takes the engine's requests, sleeps until
/// its timers. Dropping it unfinished aborts the fetch in flight.
pub struct Worker<B: Backend> {
    driver: Arc<Driver<B>>,
    /// It stopped: [`Step::Stop`], or [`Worker::stop`].
    finished: bool,
}

impl<B: Backend> Worker<B> {
    /// The driver it works for.
    pub fn driver(&self) -> &Arc<Driver<B>> {
        &self.driver
    }

    /// What to do next: fires a due timer, then hands out the next request,
    /// else says how long to sleep or to stop.
    pub fn next_step(&mut self) -> Step {
        let driver = &self.driver;
        let mut state = driver.lock();
        if state.closed {
            state.working = false;
            self.finished = true;
            return Step::Stop;
        }
        let now = driver.now();
        if state.engine.poll_timeout().is_some_and(|at| at <= now) {
            state.engine.handle_timeout(now);
        }
        let wakes = Wakes {
            callers: driver.pass_events(&mut state),
            ..Wakes::default()
        };
        let step = match state.engine.poll_request() {
            Some(request) => Step::Perform(Box::new(request)),
            None => match state.engine.poll_timeout() {
                Some(at) => Step::Sleep(Some(Duration::try_from(at - now).unwrap_or_default())),
                None if driver.eager => Step::Sleep(None),
                // A deferred session's worker stays only while a retry is
                // pending.
                None => {
                    state.working = false;
                    self.finished = true;
                    Step::Stop
                }
            },
        };
        drop(state);
        driver.wake(wakes);
        step
    }

    /// Feeds the answer to a [`Step::Perform`] request back.
    pub fn answer(&mut self, input: Input) {
        let now = self.driver.now();
        let wakes = self.own_wakes(|engine| engine.handle_input(now, input));
        self.driver.wake(wakes);
    }

    /// The request could not be answered (`cause` says why): the fetch in
    /// flight fails and its waiters get the error.
    pub fn abort(&mut self, cause: Abort) {
        tracing_abort(&cause);
        let now = self.driver.now();
        let wakes = self.own_wakes(|engine| engine.abort(now, cause));
        self.driver.wake(wakes);
    }

    /// The worker cannot go on (it could not start, its runtime cannot
    /// sleep): the fetch in flight fails with `cause`, and the next caller
    /// that needs a worker starts one.
    pub fn stop(mut self, cause: Abort) {
        self.stop_with(cause);
    }

    /// Calls the engine as this worker: the requests it makes are this
    /// worker's to take, so it is neither woken nor started again.
    fn own_wakes(&self, call: impl FnOnce(&mut Engine)) -> Wakes {
        let mut state = self.driver.lock();
        call(&mut state.engine);
        Wakes {
            callers: self.driver.pass_events(&mut state),
            ..Wakes::default()
        }
    }

    /// Ends the worker and the fetch in flight. It starts no other worker:
    /// on a runtime that drops every task that would never end. Every
    /// request queued belonged to the aborted fetch, so none is left; the
    /// next caller starts a worker if one is needed.
    fn stop_with(&mut self, cause: Abort) {
        self.finished = true;
        tracing_abort(&cause);
        let now = self.driver.now();
        let wakes = self.own_wakes(|engine| engine.abort(now, cause));
        self.driver.lock().working = false;
        self.driver.wake(wakes);
    }
}

impl<B: Backend> Drop for Worker<B> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let cause = if std::thread::panicking() {
            Abort::Panicked(Panicked::new(B::WORKER, &"it unwound while refreshing"))
        } else {
            Abort::Dropped(B::WORKER)
        };
        self.stop_with(cause);
    }
}

fn tracing_abort(cause: &Abort) {
    tracing::warn!(target: "refresh_session", %cause, "refresh aborted");
}
