//! The user code an async session calls on the engine's behalf: MFA token
//! providers and custom credential providers (async closures, or sync ones
//! run where blocking is allowed), MFA commands, and a source session for
//! role chaining. A panic in user code becomes an error for the refresh; it
//! never takes the refresh task down with callers still waiting.

use std::future::Future;
use std::sync::Arc;

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::error::HookError;
use refresh_session_core::rejection::Refused;
use refresh_session_core::{ConfigError, Credentials, Error, Secret};
use refresh_session_io::{MfaCommand, unwind};
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
/// Boxed: a source session's refresh is another session's future. Given
/// the credentials STS refused, if any.
pub(crate) type SourceProvider =
    dyn Fn(Option<Refused>) -> BoxFuture<'static, Result<Arc<Credentials>, Error>> + Send + Sync;

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
                guarded_async("MFA token provider", || provider(serial.to_owned())).await
            }
            Some(MfaHook::Blocking(provider)) => {
                let (provider, serial) = (provider.clone(), serial.to_owned());
                blocking("MFA token provider", runtime, move || provider(&serial)).await
            }
            Some(MfaHook::Command(command)) => {
                let (command, serial) = (command.clone(), serial.to_owned());
                return blocking("MFA command", runtime, move || {
                    command.run(&serial).map_err(BoxError::from)
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
                guarded_async("custom credential provider", || provider()).await
            }
            Some(CustomHook::Blocking(provider)) => {
                let provider = provider.clone();
                blocking("custom credential provider", runtime, move || provider()).await
            }
            None => Err("no custom credential provider is set".into()),
        };
        result.map_err(HookError::new)
    }

    /// The source's current credentials, once it has been told of the
    /// ones STS `refused`.
    pub(crate) async fn source(&self, refused: Option<Refused>) -> Result<Arc<Credentials>, Error> {
        match &self.source {
            Some(source) => source(refused).await,
            None => Err(ConfigError::new(
                "source_provider",
                "source credentials were asked for, but no source is set",
            )
            .into()),
        }
    }
}

/// Signs with `session`'s credentials; a refusal is passed on to it, so
/// that it refreshes.
pub(crate) fn source_session(session: RefreshableSession) -> Arc<SourceProvider> {
    Arc::new(move |refused: Option<Refused>| {
        let session = session.clone();
        Box::pin(async move {
            if let Some(refused) = refused {
                session.credentials_rejected(&refused.access_key_id, refused.rejection);
            }
            session.credentials().await
        })
    })
}

/// Signs with what `provider` returns; its errors and panics fail the
/// refresh.
pub(crate) fn source_provider<F, Fut>(provider: F) -> Arc<SourceProvider>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Credentials, BoxError>> + Send + 'static,
{
    let provider = Arc::new(provider);
    // A provider is asked again as it is: it has no refresh to start.
    Arc::new(move |_refused| {
        let provider = Arc::clone(&provider);
        Box::pin(async move {
            guarded_async("source credentials provider", || Box::pin(provider()))
                .await
                .map(Arc::new)
                .map_err(|e| Error::SourceProvider(HookError::new(e)))
        })
    })
}

/// Runs blocking code on the runtime's blocking threads. A panic there is
/// an error that names `what` and keeps the panic's message; work the
/// runtime drops without running (it shut down) is an error too.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    runtime: &dyn Runtime,
    work: impl FnOnce() -> Result<T, BoxError> + Send + 'static,
) -> Result<T, BoxError> {
    let (sender, receiver) = oneshot::channel();
    let spawned = unwind::guarded("runtime's spawn_blocking", || {
        runtime.spawn_blocking(Box::new(move || {
            let _ = sender.send(guarded(what, work));
        }))
    });
    spawned?;
    receiver.await.unwrap_or_else(|_| {
        Err(format!("the {what} did not run: the runtime dropped it (did it shut down?)").into())
    })
}

/// Calls user code that returns a future and awaits it; a panic in the call
/// or in any poll of the future is an error that names `what`.
async fn guarded_async<T>(
    what: &'static str,
    call: impl FnOnce() -> BoxFuture<'static, Result<T, BoxError>>,
) -> Result<T, BoxError> {
    let future = unwind::guarded(what, call)?;
    unwind::guarded_future(what, future).await?
}

/// Runs user code, turning a panic into an error.
fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, BoxError> {
    unwind::guarded(what, f)?
}
