//! The SDK's sleep and time source as the session's: a session built from
//! an `SdkConfig` sleeps and reads the clock the way the SDK's clients do
//! (a test's paused time source included). Tasks still run on tokio, as the
//! SDK's own do.

use std::time::{Duration, SystemTime};

use aws_smithy_async::rt::sleep::{AsyncSleep, SharedAsyncSleep};
use aws_smithy_async::time::SharedTimeSource;
use refresh_session_core::Clock;
use refresh_session_tokio::{BoxFuture, Runtime, TokioRuntime};

/// Spawns on tokio, sleeps with the SDK's sleep.
#[derive(Debug, Clone)]
pub(crate) struct SdkRuntime {
    tokio: TokioRuntime,
    sleep: SharedAsyncSleep,
}

impl SdkRuntime {
    pub(crate) fn new(tokio: TokioRuntime, sleep: SharedAsyncSleep) -> Self {
        Self { tokio, sleep }
    }
}

impl Runtime for SdkRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.tokio.spawn(task);
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        self.tokio.spawn_blocking(work);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self.sleep.sleep(duration))
    }
}

/// The SDK's time source as the session's clock.
#[derive(Debug, Clone)]
pub(crate) struct SdkClock(pub(crate) SharedTimeSource);

impl Clock for SdkClock {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}
