//! `RefreshableSession`, the blocking session, and its builder.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::engine::{Engine, Metrics};
use refresh_session_core::sign::sign_request;
use refresh_session_core::source::SourceCredentials;
use refresh_session_core::sts::{self, AssumeRole, CallerIdentity};
use refresh_session_core::{ConfigError, Credentials, Error, SessionConfig, SessionOptions};

use crate::driver::{Shared, now};
use crate::hooks::{BoxError, Hooks, MfaHook};
use crate::transport::{Timeouts, Transport};
use refresh_session_io::MfaCommand;

/// A source of AWS credentials that keeps them fresh.
///
/// Cheap to clone (clones share one cache and one refresh), `Send` and
/// `Sync`. [`credentials`](Self::credentials) takes no lock while the cached
/// credential is fresh; see the crate docs for the refresh semantics.
#[derive(Clone)]
pub struct RefreshableSession {
    handle: Arc<Handle>,
}

/// The last clone to drop stops the session's background thread.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl RefreshableSession {
    /// A session whose credentials come from STS `AssumeRole`.
    pub fn sts(params: AssumeRole) -> Builder {
        Builder::new(SessionConfig::assume_role(params))
    }

    /// A session whose credentials come from `provider`, called on every
    /// refresh. It must return an expiration.
    pub fn custom<F>(provider: F) -> Builder
    where
        F: Fn() -> Result<CustomCredentials, BoxError> + Send + Sync + 'static,
    {
        let mut builder = Builder::new(SessionConfig::custom());
        builder.hooks.custom = Some(Arc::new(provider));
        builder
    }

    /// Credentials that are valid now. Returns at once while the cached
    /// credential is fresh or in the advisory window (a refresh then runs
    /// in the background); waits for the one refresh in flight once the
    /// mandatory window has begun.
    #[inline]
    pub fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        self.handle.shared.credentials()
    }

    /// Who the session's credentials belong to (for an STS session, the
    /// assumed role), from STS `GetCallerIdentity`.
    pub fn whoami(&self) -> Result<CallerIdentity, Error> {
        let credentials = self.credentials()?;
        let shared = &self.handle.shared;
        let request = sts::caller_identity_request(&shared.sts_endpoint()?, &credentials, now())?;
        let response = shared.transport.send(request)?;
        sts::parse_caller_identity(&response)
    }

    /// Signs `request` with SigV4 for `service` in `region`, with the
    /// session's current credentials. The URI must be absolute.
    pub fn sign<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        region: &str,
        service: &str,
    ) -> Result<(), Error> {
        let credentials = self.credentials()?;
        sign_request(request, &credentials, region, service, now())
    }

    /// Refresh counters and the current expiry.
    pub fn metrics(&self) -> Metrics {
        self.handle.shared.metrics()
    }
}

impl fmt::Debug for RefreshableSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshableSession")
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

/// Builds a [`RefreshableSession`]. The shared options (region,
/// timeouts, `defer_refresh`, ...) come from [`SessionOptions`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    config: SessionConfig,
    hooks: Hooks,
    mfa_command: Option<(Vec<OsString>, Option<Duration>)>,
    timeouts: Timeouts,
}

impl SessionOptions for Builder {
    fn session_config(&mut self) -> &mut SessionConfig {
        &mut self.config
    }
}

impl Builder {
    fn new(config: SessionConfig) -> Self {
        Self {
            config,
            hooks: Hooks::default(),
            mfa_command: None,
            timeouts: Timeouts::default(),
        }
    }

    /// Asks `provider` for an MFA code, given the device's serial number,
    /// on every refresh. Requires `SerialNumber` on the role. Replaces an
    /// MFA command.
    pub fn mfa_token_provider<F>(mut self, provider: F) -> Self
    where
        F: Fn(&str) -> Result<String, BoxError> + Send + Sync + 'static,
    {
        self.hooks.mfa = Some(MfaHook::Closure(Arc::new(provider)));
        self.mfa_command = None;
        self
    }

    /// Runs `argv` (no shell) for an MFA code on every refresh and reads the
    /// last six-digit run from its output, as printed by
    /// `ykman oath accounts code`. Replaces an MFA token provider.
    pub fn mfa_command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let timeout = self.mfa_command.take().and_then(|(_, timeout)| timeout);
        self.mfa_command = Some((argv.into_iter().map(Into::into).collect(), timeout));
        self.hooks.mfa = None;
        self
    }

    /// How long the MFA command may run (default 60 s, time to touch a key).
    pub fn mfa_command_timeout(mut self, timeout: Duration) -> Self {
        if let Some((_, slot)) = &mut self.mfa_command {
            *slot = Some(timeout);
        }
        self
    }

    /// Signs the STS calls with `session`'s credentials: role chaining.
    pub fn source_session(mut self, session: &RefreshableSession) -> Self {
        self.hooks.source = Some(session.clone());
        self
    }

    /// How long connecting to STS may take (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// How long STS may take to answer (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.read = timeout;
        self
    }

    /// Checks the configuration and builds the session. An eager session
    /// (`defer_refresh(false)`) fetches its first credential here and
    /// returns the error if that fails.
    pub fn build(mut self) -> Result<RefreshableSession, Error> {
        self.attach_mfa_command()?;
        for (field, timeout) in [
            ("connect_timeout", self.timeouts.connect),
            ("read_timeout", self.timeouts.read),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero").into());
            }
        }
        if self.hooks.mfa.is_some() {
            self.config.use_mfa_token_provider();
        }
        if self.hooks.source.is_some() {
            self.config.use_source(SourceCredentials::External);
        }
        let env = |key: &str| std::env::var(key).ok();
        let seed = RandomState::new().hash_one(0u8);
        let engine = Engine::new(self.config, &env, now(), seed)?;
        let shared = Shared::new(engine, self.hooks, Transport::new(self.timeouts));
        let session = RefreshableSession {
            handle: Arc::new(Handle { shared }),
        };
        if !session.handle.shared.defers_refresh() {
            session.handle.shared.start_eager()?;
        }
        Ok(session)
    }

    fn attach_mfa_command(&mut self) -> Result<(), ConfigError> {
        let Some((argv, timeout)) = self.mfa_command.take() else {
            return Ok(());
        };
        let mut command = MfaCommand::new(argv).ok_or_else(|| {
            ConfigError::new(
                "mfa_command",
                "needs a program to run, such as [\"ykman\", \"oath\", \"accounts\", \"code\"]",
            )
        })?;
        if let Some(timeout) = timeout {
            if timeout.is_zero() {
                return Err(ConfigError::new(
                    "mfa_command_timeout",
                    "must be greater than zero",
                ));
            }
            command.set_timeout(timeout);
        }
        self.hooks.mfa = Some(MfaHook::Command(command));
        Ok(())
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn sessions_are_send_sync_and_clone() {
        assert_send_sync::<RefreshableSession>();
    }
}
