//! `RefreshableSession`, the blocking session, and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::engine::Metrics;
use refresh_session_core::iot::{Iot, TlsIdentity};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::source::SourceCredentials;
use refresh_session_core::sts::{self, AssumeRole, CallerIdentity, GetSessionToken};
use refresh_session_core::{Credentials, Error, SessionConfig, SessionOptions};

use crate::driver::{self, Shared, Threads};
use crate::fleet::Admission;
use crate::hooks::{BoxError, Hooks, MfaHook};
use crate::transport::Transport;
use refresh_session_core::fingerprint::Fingerprint;
use refresh_session_io::tls::DeviceTls;
use refresh_session_io::{MfaCommand, NewEngine, SessionHandle, new_engine};

#[cfg(feature = "mqtt")]
mod mqtt;

/// A source of AWS credentials that keeps them fresh.
///
/// Cheap to clone (clones share one cache and one refresh), `Send` and
/// `Sync`. [`credentials`](Self::credentials) takes no lock while the cached
/// credential is fresh; see the crate docs for the refresh semantics.
#[derive(Clone)]
pub struct RefreshableSession {
    handle: SessionHandle<Threads>,
}

impl RefreshableSession {
    /// A session whose credentials come from STS `AssumeRole`.
    pub fn sts(params: AssumeRole) -> Builder {
        Builder::new(SessionConfig::assume_role(params))
    }

    /// A session whose credentials are an MFA session from STS
    /// `GetSessionToken`: an IAM user's keys (the default chain's, or
    /// `source_credentials`) and a code from the MFA token provider or
    /// command, asked again only when the MFA session nears its expiry.
    /// Give it to the sessions of MFA-protected roles as their
    /// `source_session`, or use [`mfa_session`](SessionOptions::mfa_session),
    /// which does that for you.
    pub fn session_token(params: GetSessionToken) -> Builder {
        Builder::new(SessionConfig::session_token(params))
    }

    /// A session whose credentials come from AWS IoT Core's credential
    /// provider, for the device certificate in `params`; the key can be PEM
    /// or inside a PKCS#11 token. Opening the token and checking the key
    /// against the certificate happen in `build`.
    pub fn iot(params: Iot) -> Builder {
        Builder::new(SessionConfig::iot(params))
    }

    /// A session whose credentials come from the default chain, as the
    /// AWS SDKs find them: keys in the environment, web identity, the
    /// profile (`profile_name`, else `AWS_PROFILE`, else `default`: keys,
    /// SSO, `credential_process`, roles with `source_profile`), container
    /// credentials, IMDS. They are refreshed when they expire.
    pub fn default_chain() -> Builder {
        Builder::new(SessionConfig::default_chain())
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
    #[inline(always)]
    pub fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        driver::credentials(self.handle.driver())
    }

    /// As [`credentials`](Self::credentials), but waits at most `timeout`
    /// for a refresh: `Ok(None)` if it has not ended by then (it goes on).
    /// For callers that must stay responsive while they wait, such as an
    /// interpreter that checks for Ctrl-C between waits.
    pub fn credentials_within(&self, timeout: Duration) -> Result<Option<Arc<Credentials>>, Error> {
        let shared = self.handle.driver();
        match shared.fresh() {
            Some(credentials) => Ok(Some(credentials)),
            None => driver::wait_until(shared, &mut None, Instant::now().checked_add(timeout)),
        }
    }

    /// The cached credential while it is fresh, without waiting or asking
    /// the engine; `None` otherwise.
    #[inline(always)]
    pub fn fresh_credentials(&self) -> Option<Arc<Credentials>> {
        self.handle.driver().fresh()
    }

    /// A service refused a request signed with `access_key_id` as stale
    /// (see [`Rejection`]). Returns whether a retry would be signed with
    /// other credentials: the session's have changed since, or the rejected
    /// credential has expired, in which case it is dropped and a refresh
    /// starts at once. Many rejections of one credential cost one refresh.
    pub fn credentials_rejected(&self, access_key_id: &str, rejection: Rejection) -> bool {
        self.handle.credentials_rejected(access_key_id, rejection)
    }

    /// Who the session's credentials belong to (for an STS session, the
    /// assumed role), from STS `GetCallerIdentity`.
    pub fn whoami(&self) -> Result<CallerIdentity, Error> {
        let credentials = self.credentials()?;
        let request = self.handle.caller_identity_request(&credentials)?;
        let transport = &self.handle.driver().backend().transport;
        let response = transport.send(request, TlsIdentity::Default)?;
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
        self.handle.sign(request, &credentials, region, service)
    }

    /// Refresh counters and the current expiry.
    pub fn metrics(&self) -> Metrics {
        self.handle.metrics()
    }

    /// A digest of what the session was built from (the environment
    /// variables and shared files it read), for keying a cache of its
    /// credentials: equal for sessions of one configuration that would
    /// get the same credentials.
    pub fn fingerprint(&self) -> Fingerprint {
        self.handle.fingerprint()
    }
}

impl fmt::Debug for RefreshableSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.handle, f)
    }
}

/// Builds a [`RefreshableSession`]. The shared options (region,
/// timeouts, `defer_refresh`, ...) come from [`SessionOptions`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    config: SessionConfig,
    hooks: Hooks,
    /// A fleet's shared client; else the session makes its own.
    transport: Option<Transport>,
    /// A fleet's bound and pace on its members' refreshes.
    admission: Option<Arc<Admission>>,
}

impl SessionOptions for Builder {
    fn session_config(&mut self) -> &mut SessionConfig {
        &mut self.config
    }
}

impl Builder {
    pub(crate) fn new(config: SessionConfig) -> Self {
        Self {
            config,
            hooks: Hooks::default(),
            transport: None,
            admission: None,
        }
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Sends through `transport` instead of a client of its own.
    pub(crate) fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Admits every refresh through `admission` before it starts.
    pub(crate) fn admission(mut self, admission: Admission) -> Self {
        self.admission = Some(Arc::new(admission));
        self.config.use_admission();
        self
    }

    /// A builder of a fleet member: this one's hooks, transport and
    /// admission, with the member's `config`.
    pub(crate) fn for_member(&self, config: SessionConfig) -> Self {
        Self {
            config,
            hooks: self.hooks.clone(),
            transport: self.transport.clone(),
            admission: self.admission.clone(),
        }
    }

    /// Asks `provider` for an MFA code, given the device's serial number,
    /// on every refresh. Requires `SerialNumber` on the role; excludes an
    /// MFA command.
    pub fn mfa_token_provider<F>(mut self, provider: F) -> Self
    where
        F: Fn(&str) -> Result<String, BoxError> + Send + Sync + 'static,
    {
        self.hooks.mfa = Some(MfaHook::Closure(Arc::new(provider)));
        self.config.use_mfa_token_provider();
        self
    }

    /// Signs the STS calls with `session`'s credentials: role chaining.
    pub fn source_session(mut self, session: &RefreshableSession) -> Self {
        self.hooks.source = Some(session.clone());
        self.config.use_source(SourceCredentials::External);
        self
    }

    /// Checks the configuration and builds the session. An eager session
    /// (`defer_refresh(false)`) fetches its first credential here and
    /// returns the error if that fails.
    pub fn build(mut self) -> Result<RefreshableSession, Error> {
        if let Some(config) = self.config.take_mfa_session()? {
            let mfa_session = self.for_member(config).build()?;
            self = self.source_session(&mfa_session);
        }
        let NewEngine {
            engine,
            session,
            clock,
        } = new_engine(self.config)?;
        if let Some(spec) = session.mfa_command() {
            self.hooks.mfa = Some(MfaHook::Command(MfaCommand::new(spec)));
        }
        let device = session.device_identity().map(DeviceTls::open).transpose()?;
        let transport = self.transport.unwrap_or_else(|| {
            Transport::new(
                session.http_timeouts(),
                device.as_ref().map(|d| d.config().clone()),
            )
        });
        let threads = Threads::new(self.hooks, transport, self.admission);
        let shared = Shared::new(engine, clock, threads);
        let session = RefreshableSession {
            handle: SessionHandle::new(shared, session, device),
        };
        if !session.handle.driver().defers_refresh() {
            driver::start_eager(session.handle.driver())?;
        }
        Ok(session)
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
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
