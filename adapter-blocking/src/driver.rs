//! The thread side of a session, on the shared [`Driver`]: callers wait on a
//! condition variable, the worker is a thread, and requests are performed
//! with blocking IO (`ureq`, user closures, files, commands).
//!
//! A deferred session's worker thread is started when the engine has work
//! and ends when the work is done; an eager session's lives as long as the
//! session.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::engine::{Access, FetchId, Input, Permit, Request};
use refresh_session_core::error::{Abort, Panicked};
use refresh_session_core::{Credentials, Error};
use refresh_session_io::{Backend, Driver, Step, Worker, command, file, unwind};

use crate::fleet::Admission;
use crate::hooks::Hooks;
use crate::transport::Transport;

const THREAD_NAME: &str = "refresh-session";

/// A session's driver on threads.
pub(crate) type Shared = Driver<Threads>;

/// What the blocking adapter supplies to the driver.
pub(crate) struct Threads {
    /// A fetch finished.
    callers: Signal,
    /// There is work, or the session closed. Apart from `callers` so that
    /// callers do not wake each other.
    work: Signal,
    hooks: Hooks,
    pub(crate) transport: Transport,
    /// A fleet member's bound and pace on refreshes.
    admission: Option<Arc<Admission>>,
}

impl Threads {
    pub(crate) fn new(
        hooks: Hooks,
        transport: Transport,
        admission: Option<Arc<Admission>>,
    ) -> Self {
        Self {
            callers: Signal::default(),
            work: Signal::default(),
            hooks,
            transport,
            admission,
        }
    }

    /// Performs one request; a panic in the HTTP stack is the fetch's end.
    fn perform(&self, request: Request) -> Result<Input, Panicked> {
        Ok(match request {
            Request::Admit { fetch } => Input::Admitted {
                fetch,
                permit: Permit::new(self.admission.as_ref().map(Admission::enter)),
            },
            Request::Transmit {
                fetch,
                request,
                tls,
            } => match unwind::guarded("HTTP transport", || self.transport.send(request, tls))? {
                Ok(response) => Input::Response { fetch, response },
                Err(error) => Input::TransportFailed { fetch, error },
            },
            Request::MfaToken {
                fetch,
                serial_number,
            } => Input::MfaToken {
                fetch,
                result: self.hooks.mfa_token(&serial_number),
            },
            Request::CallProvider { fetch } => Input::Provided {
                fetch,
                result: self.hooks.provide(),
            },
            Request::SourceCredentials { fetch, refused } => Input::SourceCredentials {
                fetch,
                result: self.hooks.source(refused),
            },
            Request::ReadFile { fetch, path } => Input::FileRead {
                fetch,
                result: file::read(&path),
            },
            Request::WriteFile {
                fetch,
                path,
                contents,
            } => Input::FileWritten {
                fetch,
                result: file::write(&path, &contents),
            },
            Request::RunCommand { fetch, command } => Input::CommandFinished {
                fetch,
                result: command::run(&command),
            },
        })
    }
}

impl Backend for Threads {
    const WORKER: &'static str = "refresh thread";

    fn wake_callers(&self) {
        self.callers.notify();
    }

    fn wake_worker(&self) {
        self.work.notify();
    }

    fn start_worker(&self, worker: Worker<Self>) {
        // The worker goes to the thread once it runs, so that a thread that
        // cannot start leaves it here to say so.
        let (hand_over, take) = mpsc::sync_channel(1);
        let spawned = thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                if let Ok(worker) = take.recv() {
                    run(worker);
                }
            });
        match spawned {
            // A failed send drops the worker, which aborts for it.
            Ok(_) => drop(hand_over.send(worker)),
            Err(error) => worker.stop(Abort::NotStarted(format!(
                "no refresh thread could be started: {error}"
            ))),
        }
    }
}

/// Credentials valid now: from the snapshot without a lock while they are
/// fresh, else through the engine.
#[inline(always)]
pub(crate) fn credentials(shared: &Arc<Shared>) -> Result<Arc<Credentials>, Error> {
    match shared.fresh() {
        Some(credentials) => Ok(credentials),
        None => wait(shared, None),
    }
}

/// Asks the engine until it hands out credentials or an error, waiting for
/// the worker between asks. Out of line, so that the fresh path is small
/// enough to be inlined into the caller.
#[cold]
#[inline(never)]
pub(crate) fn wait(
    shared: &Arc<Shared>,
    mut waited_for: Option<FetchId>,
) -> Result<Arc<Credentials>, Error> {
    loop {
        if let Some(credentials) = wait_until(shared, &mut waited_for, None)? {
            return Ok(credentials);
        }
    }
}

/// As [`wait`], giving up at `deadline` (`None`: never) with `Ok(None)`;
/// the refresh in flight goes on.
pub(crate) fn wait_until(
    shared: &Arc<Shared>,
    waited_for: &mut Option<FetchId>,
    deadline: Option<Instant>,
) -> Result<Option<Arc<Credentials>>, Error> {
    loop {
        let ticket = shared.backend().callers.ticket();
        match shared.access(*waited_for) {
            Access::Ready(credentials) => return Ok(Some(credentials)),
            Access::Failed(error) => return Err(error),
            Access::Pending(id) => {
                *waited_for = Some(id);
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|left| left.is_zero()) {
                    return Ok(None);
                }
                shared.backend().callers.wait(ticket, left);
            }
        }
    }
}

/// Starts an eager session's worker and first fetch, and waits for it.
pub(crate) fn start_eager(shared: &Arc<Shared>) -> Result<(), Error> {
    let first = shared.prefetch();
    wait(shared, Some(first)).map(drop)
}

/// The worker thread's loop.
fn run(mut worker: Worker<Threads>) {
    let shared = Arc::clone(worker.driver());
    let threads = shared.backend();
    loop {
        let ticket = threads.work.ticket();
        match worker.next_step() {
            Step::Perform(request) => match threads.perform(*request) {
                Ok(input) => worker.answer(input),
                Err(panicked) => worker.abort(Abort::Panicked(panicked)),
            },
            Step::Sleep(timeout) => threads.work.wait(ticket, timeout),
            Step::Stop => return,
        }
    }
}

/// A wake-up that is never missed: take a ticket before checking for work,
/// and waiting with it returns at once if a notification came since.
#[derive(Default)]
struct Signal {
    notified: Mutex<u64>,
    changed: Condvar,
}

impl Signal {
    fn ticket(&self) -> u64 {
        *self.notified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        let mut notified = self.notified.lock().unwrap_or_else(PoisonError::into_inner);
        *notified = notified.wrapping_add(1);
        self.changed.notify_all();
    }

    /// Waits for a notification after `ticket`, at most `timeout`.
    fn wait(&self, ticket: u64, timeout: Option<Duration>) {
        let notified = self.notified.lock().unwrap_or_else(PoisonError::into_inner);
        let unchanged = |notified: &mut u64| *notified == ticket;
        // Nothing but a counter is guarded: a poisoned lock is still right.
        drop(match timeout {
            Some(timeout) => {
                self.changed
                    .wait_timeout_while(notified, timeout, unchanged)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait_while(notified, unchanged)
                .unwrap_or_else(PoisonError::into_inner),
        });
    }
}
