//! The user code a session calls on the engine's behalf: MFA token
//! providers (closures or commands), custom credential providers, and a
//! source session for role chaining. A panic in user code becomes an error
//! for the refresh; it never takes the driver thread down with waiters
//! still waiting.

use std::sync::Arc;

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::error::HookError;
use refresh_session_core::rejection::Refused;
use refresh_session_core::{ConfigError, Credentials, Error, Secret};

use crate::session::RefreshableSession;
use refresh_session_io::{MfaCommand, unwind};

/// The error type user hooks return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type MfaClosure = dyn Fn(&str) -> Result<String, BoxError> + Send + Sync;
type CustomClosure = dyn Fn() -> Result<CustomCredentials, BoxError> + Send + Sync;

/// Where MFA codes come from.
#[derive(Clone)]
pub(crate) enum MfaHook {
    Closure(Arc<MfaClosure>),
    Command(MfaCommand),
}

/// The hooks of one session.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) mfa: Option<MfaHook>,
    pub(crate) custom: Option<Arc<CustomClosure>>,
    pub(crate) source: Option<RefreshableSession>,
}

impl Hooks {
    /// A code for the MFA device `serial`.
    pub(crate) fn mfa_token(&self, serial: &str) -> Result<Secret, HookError> {
        match &self.mfa {
            Some(MfaHook::Closure(provider)) => guarded("MFA token provider", || provider(serial))
                .map(Secret::new)
                .map_err(HookError::new),
            Some(MfaHook::Command(command)) => command.run(serial).map_err(HookError::new),
            None => Err(HookError::new("no MFA token provider is set")),
        }
    }

    /// The custom provider's answer.
    pub(crate) fn provide(&self) -> Result<CustomCredentials, HookError> {
        match &self.custom {
            Some(provider) => {
                guarded("custom credential provider", || provider()).map_err(HookError::new)
            }
            None => Err(HookError::new("no custom credential provider is set")),
        }
    }

    /// The source session's current credentials, once it has been told
    /// of the ones STS `refused`.
    pub(crate) fn source(&self, refused: Option<Refused>) -> Result<Arc<Credentials>, Error> {
        match &self.source {
            Some(session) => {
                if let Some(refused) = refused {
                    session.credentials_rejected(&refused.access_key_id, refused.rejection);
                }
                session.credentials()
            }
            None => Err(ConfigError::new(
                "source_session",
                "source credentials were asked for, but no source session is set",
            )
            .into()),
        }
    }
}

/// Runs user code, turning a panic into an error that names the hook and
/// keeps the panic's message.
fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, BoxError> {
    unwind::guarded(what, f).unwrap_or_else(|panicked| Err(panicked.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_hook_is_an_error() {
        let hooks = Hooks {
            mfa: Some(MfaHook::Closure(Arc::new(|_| panic!("boom")))),
            ..Hooks::default()
        };
        let error = hooks.mfa_token("serial").expect_err("a panic is an error");
        assert_eq!(error.to_string(), "the MFA token provider panicked");
    }
}
