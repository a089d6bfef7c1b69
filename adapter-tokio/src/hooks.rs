//! The user code an async session calls on the engine's behalf: MFA token
//! providers and custom credential providers (async closures, or sync ones
//! run where blocking is allowed), MFA commands, and a source session for
//! role chaining. A panic in user code becomes an error for the refresh; it
//! never takes the refresh task down with callers still waiting.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::error::HookError;
use refresh_session_core::{ConfigError, Credentials, Error, Secret};
use refresh_session_io::MfaCommand;
use tokio::sync::oneshot;

use crate::runtime::{BoxFuture, Runtime};
use crate::session::RefreshableSession;

/// The error type user hooks return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type AsyncMfa = dyn Fn(String) -> BoxFuture<'static, Result<String, BoxError>> + Send + Sync;
type BlockingMfa = dyn Fn(&str) -> Result<String, BoxError> + Send + Sync;
type AsyncCustom =
    dyn Fn() -> BoxFuture<'static, Result<CustomCredentials, BoxError>> + Send + Sync;
type BlockingCustom = dyn Fn() -> Result<CustomCredentials, BoxError> + Send + Sync;
/// Boxed: a source session's refresh is another session's future.
pub(crate) type SourceProvider =
    dyn Fn() -> BoxFuture<'static, Result<Arc<Credentials>, Error>> + Send + Sync;

/// Where MFA codes come from.
#[derive(Clone)]
pub(crate) enum MfaHook {
    Async(Arc<AsyncMfa>),
    Blocking(Arc<BlockingMfa>),
    Command(MfaCommand),
}

/// Where a custom session's credentials come from.
#[derive(Clone)]
pub(crate) enum CustomHook {
    Async(Arc<AsyncCustom>),
    Blocking(Arc<BlockingCustom>),
}

/// The hooks of one session.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) mfa: Option<MfaHook>,
    pub(crate) custom: Option<CustomHook>,
    pub(crate) source: Option<Arc<SourceProvider>>,
}

impl Hooks {
    /// A code for the MFA device `serial`.
    pub(crate) async fn mfa_token(
        &self,
        serial: &str,
        runtime: &dyn Runtime,
    ) -> Result<Secret, HookError> {
        let code = match &self.mfa {
            Some(MfaHook::Async(provider)) => {
                guarded("MFA token provider", provider(serial.to_owned())).await
            }
            Some(MfaHook::Blocking(provider)) => {
                let (provider, serial) = (provider.clone(), serial.to_owned());
                blocking("MFA token provider", runtime, move || provider(&serial)).await
            }
            Some(MfaHook::Command(command)) => {
                let command = command.clone();
                return blocking("MFA command", runtime, move || {
                    command.run().map_err(BoxError::from)
                })
                .await
                .map_err(HookError::new);
            }
            None => Err("no MFA token provider is set".into()),
        };
        code.map(Secret::new).map_err(HookError::new)
    }

    /// The custom provider's answer.
    pub(crate) async fn provide(
        &self,
        runtime: &dyn Runtime,
    ) -> Result<CustomCredentials, HookError> {
        let result = match &self.custom {
            Some(CustomHook::Async(provider)) => {
                guarded("custom credential provider", provider()).await
            }
            Some(CustomHook::Blocking(provider)) => {
                let provider = provider.clone();
                blocking("custom credential provider", runtime, move || provider()).await
            }
            None => Err("no custom credential provider is set".into()),
        };
        result.map_err(HookError::new)
    }

    /// The source's current credentials.
    pub(crate) async fn source(&self) -> Result<Arc<Credentials>, Error> {
        match &self.source {
            Some(source) => source().await,
            None => Err(ConfigError::new(
                "source_provider",
                "source credentials were asked for, but no source is set",
            )
            .into()),
        }
    }
}

/// Signs with `session`'s credentials.
pub(crate) fn source_session(session: RefreshableSession) -> Arc<SourceProvider> {
    Arc::new(move || {
        let session = session.clone();
        Box::pin(async move { session.credentials().await })
    })
}

/// Signs with what `provider` returns; its errors and panics fail the
/// refresh.
pub(crate) fn source_provider<F, Fut>(provider: F) -> Arc<SourceProvider>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, BoxError>> + Send + 'static,
{
    Arc::new(move || {
        let answer = guarded("source credentials provider", Box::pin(provider()));
        Box::pin(async move {
            answer
                .await
                .map(Arc::new)
                .map_err(|e| Error::SourceProvider(HookError::new(e)))
        })
    })
}

/// Runs blocking user code on the runtime's blocking threads; a panic there
/// drops the sender and becomes an error.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    runtime: &dyn Runtime,
    work: impl FnOnce() -> Result<T, BoxError> + Send + 'static,
) -> Result<T, BoxError> {
    let (sender, receiver) = oneshot::channel();
    runtime.spawn_blocking(Box::new(move || {
        let _ = sender.send(work());
    }));
    receiver
        .await
        .unwrap_or_else(|_| Err(format!("the {what} panicked").into()))
}

/// Polls user code's future, turning a panic into an error.
fn guarded<T>(what: &str, future: BoxFuture<'static, Result<T, BoxError>>) -> CatchUnwind<T> {
    CatchUnwind {
        what: what.to_owned(),
        future,
    }
}

struct CatchUnwind<T> {
    what: String,
    future: BoxFuture<'static, Result<T, BoxError>>,
}

impl<T> Future for CatchUnwind<T> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match catch_unwind(AssertUnwindSafe(|| this.future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(format!("the {} panicked", this.what).into())),
        }
    }
}
