//! `RefreshableSession`, the async session, and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::engine::Metrics;
use refresh_session_core::fingerprint::Fingerprint;
use refresh_session_core::iot::{DeviceIdentity, Iot, TlsIdentity};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::source::SourceCredentials;
use refresh_session_core::sts::{self, AssumeRole, CallerIdentity, GetSessionToken};
use refresh_session_core::{ConfigError, Credentials, Error, SessionConfig, SessionOptions};
use refresh_session_io::tls::DeviceTls;
use refresh_session_io::{MfaCommand, NewEngine, SessionHandle, new_engine};

use crate::driver::{self, Shared, Tasks};
use crate::fleet::Admission;
use crate::hooks::{self, BoxError, CustomHook, Hooks, MfaHook, blocking};
use crate::runtime::Runtime;
use crate::transport::HttpTransport;

#[cfg(feature = "mqtt")]
mod mqtt;

/// A source of AWS credentials that keeps them fresh, for async code.
///
/// Cheap to clone (clones share one cache and one refresh), `Send` and
/// `Sync`. [`credentials`](Self::credentials) completes without awaiting
/// anything while the cached credential is fresh or in the advisory window.
#[derive(Clone)]
pub struct RefreshableSession {
    handle: SessionHandle<Tasks>,
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

    /// A session whose credentials come from the async `provider`, called
    /// on every refresh. It must return an expiration.
    pub fn custom<F, Fut>(provider: F) -> Builder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CustomCredentials, BoxError>> + Send + 'static,
    {
        let mut builder = Builder::new(SessionConfig::custom());
        builder.hooks.custom = Some(CustomHook::Async(Arc::new(move || Box::pin(provider()))));
        builder
    }

    /// A session whose credentials come from the blocking `provider`, run
    /// where blocking is allowed (tokio's `spawn_blocking`).
    pub fn custom_blocking<F>(provider: F) -> Builder
    where
        F: Fn() -> Result<CustomCredentials, BoxError> + Send + Sync + 'static,
    {
        let mut builder = Builder::new(SessionConfig::custom());
        builder.hooks.custom = Some(CustomHook::Blocking(Arc::new(provider)));
        builder
    }

    /// Credentials that are valid when the future is first polled (it does
    /// nothing before). Completes on that poll while the cached credential
    /// is fresh or in the advisory window (a refresh then runs in the
    /// background); waits for the one refresh in flight once the
    /// mandatory window has begun. Dropping the future does not cancel that
    /// refresh.
    #[inline(always)]
    pub fn credentials(&self) -> impl Future<Output = Result<Arc<Credentials>, Error>> + Send + '_ {
        driver::credentials(self.handle.driver())
    }

    /// The cached credential if it is fresh (before its advisory window),
    /// without waiting or starting anything; `None` means: call
    /// [`credentials`](Self::credentials). For callers that must return
    /// synchronously when they can, such as an AWS SDK credentials
    /// provider.
    #[inline]
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
    pub async fn whoami(&self) -> Result<CallerIdentity, Error> {
        let credentials = self.credentials().await?;
        let request = self.handle.caller_identity_request(&credentials)?;
        let transport = &self.handle.driver().backend().transport;
        let response = transport.send(request, TlsIdentity::Default).await?;
        sts::parse_caller_identity(&response)
    }

    /// Signs `request` with SigV4 for `service` in `region`, with the
    /// session's current credentials. The URI must be absolute.
    pub async fn sign<B: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<B>,
        region: &str,
        service: &str,
    ) -> Result<(), Error> {
        let credentials = self.credentials().await?;
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

/// Builds a [`RefreshableSession`]. The shared options (region, timeouts,
/// `defer_refresh`, MFA command, ...) come from [`SessionOptions`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    pub(crate) config: SessionConfig,
    pub(crate) hooks: Hooks,
    pub(crate) runtime: Option<Arc<dyn Runtime>>,
    pub(crate) transport: Option<Arc<dyn HttpTransport>>,
    /// A fleet's bound and pace on its members' refreshes.
    pub(crate) admission: Option<Arc<Admission>>,
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
            runtime: None,
            transport: None,
            admission: None,
        }
    }

    /// A builder of `config` with this one's hooks, runtime and transport:
    /// the MFA session this one's STS calls are signed with.
    pub(crate) fn for_source(&self, config: SessionConfig) -> Self {
        Self {
            config,
            hooks: self.hooks.clone(),
            runtime: self.runtime.clone(),
            transport: self.transport.clone(),
            admission: None,
        }
    }

    /// Asks the async `provider` for an MFA code, given the device's serial
    /// number, on every refresh. Requires `SerialNumber` on the role;
    /// excludes an MFA command.
    pub fn mfa_token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
    {
        self.hooks.mfa = Some(MfaHook::Async(Arc::new(move |serial| {
            Box::pin(provider(serial))
        })));
        self.config.use_mfa_token_provider();
        self
    }

    /// Like [`mfa_token_provider`](Self::mfa_token_provider) for a blocking
    /// `provider` (a terminal prompt, say), run where blocking is allowed.
    pub fn mfa_token_provider_blocking<F>(mut self, provider: F) -> Self
    where
        F: Fn(&str) -> Result<String, BoxError> + Send + Sync + 'static,
    {
        self.hooks.mfa = Some(MfaHook::Blocking(Arc::new(provider)));
        self.config.use_mfa_token_provider();
        self
    }

    /// Signs the STS calls with `session`'s credentials: role chaining.
    pub fn source_session(mut self, session: &RefreshableSession) -> Self {
        self.hooks.source = Some(hooks::source_session(session.clone()));
        self.config.use_source(SourceCredentials::External);
        self
    }

    /// Signs the STS calls with the credentials the async `provider`
    /// returns, asked on every refresh: a vault, a broker, or an AWS SDK
    /// credentials provider (the smithy adapter's `assume_role` uses the
    /// `SdkConfig`'s).
    pub fn source_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Credentials, BoxError>> + Send + 'static,
    {
        self.hooks.source = Some(hooks::source_provider(provider));
        self.config.use_source(SourceCredentials::External);
        self
    }

    /// The executor to run on instead of the tokio runtime the session is
    /// built in.
    pub fn runtime(mut self, runtime: impl Runtime) -> Self {
        self.runtime = Some(Arc::new(runtime));
        self
    }

    /// The HTTP client to send STS requests with instead of reqwest.
    pub fn transport(mut self, transport: impl HttpTransport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Checks the configuration and builds the session. An eager session
    /// (`defer_refresh(false)`) fetches its first credential here and
    /// returns the error if that fails.
    pub async fn build(mut self) -> Result<RefreshableSession, Error> {
        if let Some(config) = self.config.take_mfa_session()? {
            let mfa_session = Box::pin(self.for_source(config).build()).await?;
            self = self.source_session(&mfa_session);
        }
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => default_runtime()?,
        };
        // Reads the shared config and credentials files.
        let config = self.config;
        let NewEngine {
            engine,
            session: resolved,
            clock,
        } = blocking("session configuration", &*runtime, move || {
            Ok(new_engine(config))
        })
        .await
        .map_err(|e| ConfigError::new("profile_file", e.to_string()))??;
        if let Some(spec) = resolved.mfa_command() {
            self.hooks.mfa = Some(MfaHook::Command(MfaCommand::new(spec)));
        }
        let device = match resolved.device_identity().cloned() {
            Some(identity) => Some(open_device(&*runtime, identity).await?),
            None => None,
        };
        let transport = match self.transport {
            Some(transport) => transport,
            None => default_transport(resolved.http_timeouts(), device.as_ref())?,
        };
        let tasks = Tasks::new(self.hooks, transport, runtime, self.admission);
        let shared = Shared::new(engine, clock, tasks);
        let session = RefreshableSession {
            handle: SessionHandle::new(shared, resolved, device),
        };
        if !session.handle.driver().defers_refresh() {
            driver::start_eager(session.handle.driver()).await?;
        }
        Ok(session)
    }
}

#[cfg(feature = "tokio-runtime")]
pub(crate) fn default_runtime() -> Result<Arc<dyn Runtime>, ConfigError> {
    match crate::runtime::TokioRuntime::current() {
        Some(runtime) => Ok(Arc::new(runtime)),
        None => Err(ConfigError::new(
            "runtime",
            "no tokio runtime is running: build the session inside one, or set `.runtime(..)` for another executor",
        )),
    }
}

#[cfg(not(feature = "tokio-runtime"))]
pub(crate) fn default_runtime() -> Result<Arc<dyn Runtime>, ConfigError> {
    Err(ConfigError::new(
        "runtime",
        "set `.runtime(..)`: the `tokio-runtime` feature that provides a default is off",
    ))
}

/// Opens an IoT session's key on a blocking thread: it reads files and may
/// log in to a PKCS#11 token.
async fn open_device(runtime: &dyn Runtime, identity: DeviceIdentity) -> Result<DeviceTls, Error> {
    let opened = blocking("device identity", runtime, move || {
        Ok(DeviceTls::open(&identity))
    })
    .await
    .map_err(|e| ConfigError::new("certificate", e.to_string()))?;
    Ok(opened?)
}

#[cfg(feature = "reqwest")]
pub(crate) fn default_transport(
    timeouts: HttpTimeouts,
    device: Option<&DeviceTls>,
) -> Result<Arc<dyn HttpTransport>, ConfigError> {
    let device = device.map(|d| d.config().clone());
    crate::transport::ReqwestTransport::new(timeouts, device)
        .map(|transport| Arc::new(transport) as Arc<dyn HttpTransport>)
        .map_err(|e| {
            ConfigError::new(
                "transport",
                format!("the HTTP client could not be built: {e}"),
            )
        })
}

#[cfg(not(feature = "reqwest"))]
pub(crate) fn default_transport(
    _: HttpTimeouts,
    _: Option<&DeviceTls>,
) -> Result<Arc<dyn HttpTransport>, ConfigError> {
    Err(ConfigError::new(
        "transport",
        "set `.transport(..)`: the `reqwest` feature that provides a default is off",
    ))
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
