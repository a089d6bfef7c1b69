//! What a session needs from an executor: spawning its refresh task,
//! running blocking user code, and sleeping. The session logic uses nothing
//! else of the executor, so any executor can drive it; [`TokioRuntime`] is
//! the default.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The executor a session runs on.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` in the background until it completes. Refreshes run in
    /// such tasks, so a caller that gives up does not cancel a refresh
    /// other callers wait for.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// Runs `work` where blocking is allowed (sync MFA and custom providers,
    /// MFA commands).
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

#[cfg(feature = "tokio-runtime")]
pub use tokio_runtime::TokioRuntime;

#[cfg(feature = "tokio-runtime")]
mod tokio_runtime {
    use super::*;

    /// The tokio runtime the session was built in (its time driver must be
    /// enabled, as `#[tokio::main]` does).
    #[derive(Debug, Clone)]
    pub struct TokioRuntime {
        handle: tokio::runtime::Handle,
    }

    impl TokioRuntime {
        /// The runtime of the calling task, if there is one.
        pub fn current() -> Option<Self> {
            tokio::runtime::Handle::try_current()
                .ok()
                .map(|handle| Self { handle })
        }

        /// A specific runtime.
        pub fn new(handle: tokio::runtime::Handle) -> Self {
            Self { handle }
        }
    }

    impl Runtime for TokioRuntime {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            drop(self.handle.spawn(task));
        }

        fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
            drop(self.handle.spawn_blocking(work));
        }

        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            // A sleep binds to the timer of the runtime it is created in.
            let _runtime = self.handle.enter();
            Box::pin(tokio::time::sleep(duration))
        }
    }
}
