//! The task side of an async session, on the shared [`Driver`]: callers
//! wait on a `Notify`, the worker is a task of the session's [`Runtime`],
//! and requests are performed by the [`HttpTransport`] and async hooks.
//!
//! Callers never do IO and never hold the lock across an `.await`. A
//! deferred session's worker task is spawned when the engine has work and
//! ends when the work is done; an eager session's lives as long as the
//! session. A caller that stops waiting (its future dropped) leaves the
//! refresh running for the others.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use refresh_session_core::engine::{Access, FetchId, Input, Permit, Request};
use refresh_session_core::error::{Abort, Panicked};
use refresh_session_core::{Credentials, Error};
use refresh_session_io::{Backend, Driver, Step, Worker, command, file, unwind};
use tokio::sync::Notify;

use crate::fleet::Admission;
use crate::hooks::{Hooks, blocking};
use crate::runtime::{BoxFuture, Runtime};
use crate::transport::HttpTransport;

/// A session's driver on tasks.
pub(crate) type Shared = Driver<Tasks>;

/// What the async adapter supplies to the driver.
pub(crate) struct Tasks {
    /// A fetch finished.
    callers: Notify,
    /// There is work, or the session closed. Apart from `callers` so that
    /// a caller never wakes itself.
    work: Notify,
    hooks: Hooks,
    pub(crate) transport: Arc<dyn HttpTransport>,
    pub(crate) runtime: Arc<dyn Runtime>,
    /// A fleet member's bound and pace on refreshes.
    admission: Option<Arc<Admission>>,
}

impl Tasks {
    pub(crate) fn new(
        hooks: Hooks,
        transport: Arc<dyn HttpTransport>,
        runtime: Arc<dyn Runtime>,
        admission: Option<Arc<Admission>>,
    ) -> Self {
        Self {
            callers: Notify::new(),
            work: Notify::new(),
            hooks,
            transport,
            runtime,
            admission,
        }
    }

    /// Performs one request; a panic in the transport is the fetch's end.
    async fn perform(&self, request: Request) -> Result<Input, Panicked> {
        let runtime = &*self.runtime;
        Ok(match request {
            Request::Admit { fetch } => Input::Admitted {
                fetch,
                permit: match &self.admission {
                    Some(admission) => admission.enter(runtime).await?,
                    None => Permit::new(()),
                },
            },
            Request::Transmit {
                fetch,
                request,
                tls,
            } => {
                const WHAT: &str = "HTTP transport";
                let sending = unwind::guarded(WHAT, || self.transport.send(request, tls))?;
                match unwind::guarded_future(WHAT, sending).await? {
                    Ok(response) => Input::Response { fetch, response },
                    Err(error) => Input::TransportFailed { fetch, error },
                }
            }
            Request::MfaToken {
                fetch,
                serial_number,
            } => Input::MfaToken {
                fetch,
                result: self.hooks.mfa_token(&serial_number, runtime).await,
            },
            Request::CallProvider { fetch } => Input::Provided {
                fetch,
                result: self.hooks.provide(runtime).await,
            },
            Request::SourceCredentials { fetch, refused } => Input::SourceCredentials {
                fetch,
                result: self.hooks.source(refused).await,
            },
            Request::ReadFile { fetch, path } => Input::FileRead {
                fetch,
                result: blocking_io("file read", runtime, move || file::read(&path)).await,
            },
            Request::WriteFile {
                fetch,
                path,
                contents,
            } => Input::FileWritten {
                fetch,
                result: blocking_io("file write", runtime, move || file::write(&path, &contents))
                    .await,
            },
            Request::RunCommand { fetch, command } => Input::CommandFinished {
                fetch,
                result: blocking_io("command", runtime, move || command::run(&command)).await,
            },
        })
    }
}

impl Backend for Tasks {
    const WORKER: &'static str = "refresh task";

    fn wake_callers(&self) {
        self.callers.notify_waiters();
    }

    fn wake_worker(&self) {
        self.work.notify_waiters();
    }

    fn start_worker(&self, worker: Worker<Self>) {
        // A runtime that drops the task (it shut down) drops the worker,
        // which aborts for it; one whose spawn panics, likewise.
        let task = Box::pin(run(worker));
        if let Err(panicked) = unwind::guarded("runtime's spawn", || self.runtime.spawn(task)) {
            tracing::warn!(target: "refresh_session", %panicked, "no refresh task");
        }
    }
}

/// The future of [`credentials`]: its first poll takes a fresh credential
/// without a state machine (nothing is stored in the future but the
/// session); otherwise it awaits the wait, boxed.
pub(crate) struct CredentialsFuture<'a> {
    shared: &'a Arc<Shared>,
    waiting: Option<BoxFuture<'a, Result<Arc<Credentials>, Error>>>,
}

/// Credentials valid at the first poll. Fresh and advisory paths complete
/// on that poll.
#[inline(always)]
pub(crate) fn credentials(shared: &Arc<Shared>) -> CredentialsFuture<'_> {
    CredentialsFuture {
        shared,
        waiting: None,
    }
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
                None => this.waiting.insert(waiting(this.shared)),
            },
        };
        waiting.as_mut().poll(cx)
    }
}

/// Out of line, so that a fresh poll is small enough to be inlined into the
/// caller's future.
#[cold]
#[inline(never)]
fn waiting(shared: &Arc<Shared>) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
    Box::pin(wait(shared, None))
}

/// Asks the engine until it hands out credentials or an error, waiting for
/// the worker between asks.
pub(crate) async fn wait(
    shared: &Arc<Shared>,
    mut waited_for: Option<FetchId>,
) -> Result<Arc<Credentials>, Error> {
    loop {
        // Registered before asking, so that a fetch finishing in between
        // is not missed.
        let mut finished = pin!(shared.backend().callers.notified());
        finished.as_mut().enable();
        match shared.access(waited_for) {
            Access::Ready(credentials) => return Ok(credentials),
            Access::Failed(error) => return Err(error),
            Access::Pending(id) => {
                waited_for = Some(id);
                finished.await;
            }
        }
    }
}

/// Starts an eager session's worker and first fetch, and waits for it.
pub(crate) async fn start_eager(shared: &Arc<Shared>) -> Result<(), Error> {
    let first = shared.prefetch();
    wait(shared, Some(first)).await.map(drop)
}

/// The worker task's loop.
async fn run(mut worker: Worker<Tasks>) {
    let shared = Arc::clone(worker.driver());
    let tasks = shared.backend();
    loop {
        let mut work = pin!(tasks.work.notified());
        work.as_mut().enable();
        match worker.next_step() {
            Step::Perform(request) => match tasks.perform(*request).await {
                Ok(input) => worker.answer(input),
                Err(panicked) => worker.abort(Abort::Panicked(panicked)),
            },
            Step::Sleep(None) => work.await,
            Step::Sleep(Some(timeout)) => {
                // A runtime without a timer panics here: the fetch waiting
                // for it cannot go on.
                const WHAT: &str = "runtime's timer";
                let slept = match unwind::guarded(WHAT, || tasks.runtime.sleep(timeout)) {
                    Ok(sleep) => first(work, unwind::guarded_future(WHAT, sleep)).await,
                    Err(panicked) => Err(panicked),
                };
                if let Err(panicked) = slept {
                    return worker.stop(Abort::Panicked(panicked));
                }
            }
            Step::Stop => return,
        }
    }
}

/// Runs blocking IO on the runtime's blocking threads; a panic there is
/// reported as the IO's error.
async fn blocking_io<T: Send + 'static>(
    what: &'static str,
    runtime: &dyn Runtime,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    blocking(what, runtime, move || Ok(work()))
        .await
        .map_err(|e| e.to_string())?
}

/// Completes when either future does: the wake-up, or the sleep (with its
/// outcome).
async fn first<E>(
    wake: impl Future<Output = ()>,
    sleep: impl Future<Output = Result<(), E>>,
) -> Result<(), E> {
    let (mut wake, mut sleep) = (pin!(wake), pin!(sleep));
    poll_fn(|cx| {
        if wake.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        sleep.as_mut().poll(cx)
    })
    .await
}
