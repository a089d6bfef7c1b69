//! A session's configuration: the credential method plus the options every
//! adapter shares, and their resolution against the environment.
//!
//! Adapters build their sessions on a [`SessionConfig`] and get the shared
//! setters from [`SessionOptions`], so the blocking and async builders have
//! one surface and one set of checks.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use crate::chain::plan::{ChainInputs, SourcePlan};
use crate::chain::run::ChainSource;
use crate::command::CommandSpec;
use crate::credentials::Credentials;
use crate::error::ConfigError;
use crate::iot::{DeviceIdentity, Iot, IotRequest};
use crate::policy::RefreshPolicy;
use crate::profile::{ProfileFile, ProfileSet};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::source::SourceCredentials;
use crate::sts::{self, AssumeRole, GetSessionToken, StsEndpoint};

/// How a session gets credentials and when it refreshes them.
#[derive(Clone)]
pub struct SessionConfig {
    method: MethodConfig,
    region: Option<String>,
    endpoint_url: Option<String>,
    defer_refresh: bool,
    advisory_timeout: Option<Duration>,
    mandatory_timeout: Option<Duration>,
    source: Option<SourceCredentials>,
    mfa_token_provider: bool,
    admission: bool,
    serve_expired: bool,
    mfa_command: Option<Vec<OsString>>,
    mfa_command_timeout: Duration,
    mfa_session: Option<GetSessionToken>,
    http: HttpTimeouts,
    max_attempts: u32,
    retry_deadline: Duration,
    clock: Option<Arc<dyn Clock>>,
    profile_name: Option<String>,
    environment: Option<Arc<BTreeMap<String, String>>>,
    profile_files: [Option<ProfileFile>; 2],
}

/// Where a driver reads the time. The engine never reads a clock (it is
/// given `now`); the adapters read this one, the system clock unless set.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// The time read cheaply, for the lock-free fresh check: whole seconds
    /// since the Unix epoch (0 before it) of a time at most
    /// [`coarse_lag`](Self::coarse_lag) behind `now`. Seconds, because the
    /// check compares one integer. The system clock reads the kernel's
    /// coarse clock; by default, `now`.
    fn now_coarse_secs(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }

    /// How far [`now_coarse_secs`](Self::now_coarse_secs) may be behind
    /// `now`. The fresh check ends a credential's window this much early
    /// (and on a whole second), so that it never says fresh when `now`
    /// would not (callers in that last second ask the engine, which reads
    /// `now`).
    fn coarse_lag(&self) -> Duration {
        Duration::ZERO
    }
}

#[derive(Clone, Debug)]
enum MethodConfig {
    AssumeRole(Box<AssumeRole>),
    SessionToken(Box<GetSessionToken>),
    Iot(Box<Iot>),
    Custom,
    Chain,
}

impl SessionConfig {
    /// Credentials from STS `AssumeRole`.
    pub fn assume_role(params: AssumeRole) -> Self {
        Self::with_method(MethodConfig::AssumeRole(Box::new(params)))
    }

    /// MFA session credentials from STS `GetSessionToken`, signed with the
    /// source credentials (an IAM user's keys) and an MFA code from the
    /// token provider or command: a source session for roles whose trust
    /// policy requires MFA.
    pub fn session_token(params: GetSessionToken) -> Self {
        Self::with_method(MethodConfig::SessionToken(Box::new(params)))
    }

    /// The template of a fleet's members: each gets its role from
    /// [`for_role`](Self::for_role).
    pub fn fleet() -> Self {
        Self::assume_role(AssumeRole::default())
    }

    /// Credentials from a custom provider that the driver calls.
    pub fn custom() -> Self {
        Self::with_method(MethodConfig::Custom)
    }

    /// Credentials from AWS IoT Core's credential provider, for a device
    /// certificate.
    pub fn iot(params: Iot) -> Self {
        Self::with_method(MethodConfig::Iot(Box::new(params)))
    }

    /// Credentials from the default chain (environment, web identity,
    /// profile, container, IMDS), refreshed when they expire.
    pub fn default_chain() -> Self {
        Self::with_method(MethodConfig::Chain)
    }

    /// These options for an `AssumeRole` session of `params`: what a fleet
    /// of sessions builds its members from.
    pub fn for_role(&self, params: AssumeRole) -> Self {
        Self {
            method: MethodConfig::AssumeRole(Box::new(params)),
            ..self.clone()
        }
    }

    /// The HTTP timeouts set.
    pub fn http_timeouts(&self) -> HttpTimeouts {
        self.http
    }

    fn with_method(method: MethodConfig) -> Self {
        Self {
            method,
            region: None,
            endpoint_url: None,
            defer_refresh: true,
            advisory_timeout: None,
            mandatory_timeout: None,
            source: None,
            mfa_token_provider: false,
            admission: false,
            serve_expired: false,
            mfa_command: None,
            mfa_command_timeout: CommandSpec::DEFAULT_TIMEOUT,
            mfa_session: None,
            http: HttpTimeouts::default(),
            max_attempts: RetryPolicy::default().max_attempts(),
            retry_deadline: RetryPolicy::default().deadline(),
            clock: None,
            profile_name: None,
            environment: None,
            profile_files: [None, None],
        }
    }

    /// Declares that the driver answers [`Request::MfaToken`] requests:
    /// adapters call this when the user sets an MFA token provider.
    ///
    /// [`Request::MfaToken`]: crate::engine::Request::MfaToken
    pub fn use_mfa_token_provider(&mut self) {
        self.mfa_token_provider = true;
    }

    /// Declares that the driver admits every fetch before it starts
    /// ([`Request::Admit`]): a fleet bounding and pacing its members'
    /// refreshes. Admitted first, a fetch asks for its MFA code and signs
    /// its requests after the wait, never before it.
    ///
    /// [`Request::Admit`]: crate::engine::Request::Admit
    pub fn use_admission(&mut self) {
        self.admission = true;
    }

    /// Declares where the credentials for STS calls come from; adapters
    /// call this with [`SourceCredentials::External`] for a source session.
    pub fn use_source(&mut self, source: SourceCredentials) {
        self.source = Some(source);
    }

    /// Splits off the MFA session set with [`SessionOptions::mfa_session`]:
    /// returns the configuration of a session of its credentials
    /// (`GetSessionToken`, signed with this configuration's source
    /// credentials, asking its MFA token provider or command for codes), and
    /// leaves this one a role that asks for no code, to be signed with those
    /// credentials. Adapters build the returned session first and make it
    /// this one's source session (see [`use_source`](Self::use_source)):
    /// every role signed by it shares one MFA session and one code.
    pub fn take_mfa_session(&mut self) -> Result<Option<SessionConfig>, ConfigError> {
        if matches!(self.method, MethodConfig::Chain) {
            // Profile roles with that `mfa_serial` use it (see resolve).
            return Ok(None);
        }
        let Some(params) = self.mfa_session.take() else {
            return Ok(None);
        };
        match &self.method {
            MethodConfig::AssumeRole(role)
                if role.mfa_serial().is_some() || role.static_token_code().is_some() =>
            {
                return Err(ConfigError::new(
                    "SerialNumber",
                    "with an MFA session the role is assumed without a code: set the MFA device on mfa_session only",
                ));
            }
            MethodConfig::AssumeRole(_) => {}
            _ => {
                return Err(ConfigError::new(
                    "mfa_session",
                    "applies to STS role sessions and fleets only",
                ));
            }
        }
        let session = Self {
            method: MethodConfig::SessionToken(Box::new(params)),
            // The MFA session refreshes when a role asks and its own
            // lifetime says, never on a timer that would prompt unasked.
            defer_refresh: true,
            advisory_timeout: None,
            mandatory_timeout: None,
            admission: false,
            serve_expired: false,
            ..self.clone()
        };
        self.mfa_token_provider = false;
        self.mfa_command = None;
        self.source = Some(SourceCredentials::External);
        Ok(Some(session))
    }

    /// The clock set with [`SessionOptions::clock`], if any.
    pub fn clock(&self) -> Option<Arc<dyn Clock>> {
        self.clock.clone()
    }

    /// The environment set with [`SessionOptions::environment`], if any:
    /// the driver reads variables from it instead of the process's.
    pub fn environment(&self) -> Option<&BTreeMap<String, String>> {
        self.environment.as_deref()
    }

    /// Hands in the shared `config` and `credentials` files, as read from
    /// [`profile::file_paths`](crate::profile::file_paths) (`None` for a
    /// file that does not exist). Drivers call this before building the
    /// engine: the profiles and their regions are read when the session is
    /// built, as the AWS SDKs read them.
    pub fn use_profile_files(
        &mut self,
        config: Option<ProfileFile>,
        credentials: Option<ProfileFile>,
    ) {
        self.profile_files = [config, credentials];
    }

    /// The shared files handed in with [`Self::use_profile_files`].
    pub(crate) fn profile_files(&self) -> &[Option<ProfileFile>; 2] {
        &self.profile_files
    }

    /// Whether the session refreshes only when asked (`true`, the default)
    /// or fetches at construction and refreshes in the background.
    pub fn defers_refresh(&self) -> bool {
        self.defer_refresh
    }

    /// Checks everything and fills in defaults from `env` (a lookup of
    /// environment variables) and `now`.
    pub(crate) fn resolve(
        self,
        env: &dyn Fn(&str) -> Option<String>,
        now: OffsetDateTime,
    ) -> Result<Resolved, ConfigError> {
        // A chain session's MFA session is its profile roles' (the chain
        // takes it); any other is split off by the adapter.
        if self.mfa_session.is_some() && !matches!(self.method, MethodConfig::Chain) {
            return Err(ConfigError::new(
                "mfa_session",
                "was not split off (SessionConfig::take_mfa_session) by the driver building this session",
            ));
        }
        let policy = RefreshPolicy::new(self.advisory_timeout, self.mandatory_timeout)?;
        self.http.check()?;
        let retry = RetryPolicy::new(self.max_attempts, self.retry_deadline)?;
        let mfa_command = self.mfa_command_spec()?;
        let mfa_hook = self.mfa_token_provider || mfa_command.is_some();
        let [config_file, credentials_file] = &self.profile_files;
        let profiles = ProfileSet::parse(config_file.as_ref(), credentials_file.as_ref())?;
        let profile_name = self.profile_name.as_deref();
        let endpoint_url = self.endpoint_url.clone().or_else(|| endpoint_from_env(env));
        let loopback = endpoint_url.as_deref().is_some_and(sts::is_loopback_url);
        let chain = || -> Result<Box<ChainSource>, ConfigError> {
            let inputs = ChainInputs {
                env,
                profiles: &profiles,
                profile_name,
                now,
                mfa_session: self.mfa_session.as_ref(),
                loopback,
            };
            Ok(Box::new(ChainSource::new(SourcePlan::decide(&inputs)?)))
        };
        let (method, device) = match self.method {
            MethodConfig::AssumeRole(params) => {
                let loopback = endpoint_url.as_deref().is_some_and(sts::is_loopback_url);
                let params = params.validated(now, loopback)?;
                let source = match self.source {
                    Some(SourceCredentials::Static(credentials)) => RoleSource::Static(credentials),
                    Some(SourceCredentials::External) => RoleSource::External,
                    None => RoleSource::Chain(chain()?),
                };
                let mfa = Mfa::resolve(
                    params.mfa_serial(),
                    params.static_token_code(),
                    mfa_hook,
                    source.needs_mfa(),
                )?;
                let call = StsCall::AssumeRole(Box::new(params));
                (Method::Sts(StsMethod { call, source, mfa }), None)
            }
            MethodConfig::SessionToken(params) => {
                let loopback = endpoint_url.as_deref().is_some_and(sts::is_loopback_url);
                let params = params.validated(loopback)?;
                let source = match self.source {
                    Some(SourceCredentials::Static(credentials)) => RoleSource::Static(credentials),
                    Some(SourceCredentials::External) => RoleSource::External,
                    None => RoleSource::Chain(chain()?),
                };
                let mfa = Mfa::resolve(Some(params.serial_number()), None, mfa_hook, false)?;
                let call = StsCall::SessionToken(Box::new(params));
                (Method::Sts(StsMethod { call, source, mfa }), None)
            }
            MethodConfig::Iot(params) => {
                let (request, device) = params.validated()?;
                (Method::Iot(Box::new(request)), Some(device))
            }
            MethodConfig::Custom => (Method::Custom, None),
            MethodConfig::Chain => (Method::Chain(chain()?), None),
        };
        if let Some(chain) = method.chain().filter(|c| c.mfa_serials().next().is_some())
            && !mfa_hook
        {
            return Err(ConfigError::new(
                "mfa_serial",
                format!(
                    "{} assumes a role with MFA: set an MFA token provider or an MFA command",
                    chain.description()
                ),
            ));
        }
        if let (Some(params), Some(chain)) = (&self.mfa_session, method.chain())
            && !chain.has_mfa_session()
        {
            return Err(ConfigError::new(
                "mfa_session",
                format!(
                    "{} has no role profile whose mfa_serial is {}: the MFA session would sign nothing",
                    chain.description(),
                    params.serial_number()
                ),
            ));
        }
        let uses_hook = match &method {
            Method::Sts(_) => true,
            other => other
                .chain()
                .is_some_and(|c| c.mfa_serials().next().is_some()),
        };
        if mfa_hook && !uses_hook {
            return Err(ConfigError::new(
                if self.mfa_token_provider {
                    "mfa_token_provider"
                } else {
                    "mfa_command"
                },
                "applies to STS roles only (the session's, or a profile's with mfa_serial)",
            ));
        }
        let profile_region = || {
            let name = profile_name
                .map(str::to_owned)
                .or_else(|| env("AWS_PROFILE").filter(|p| !p.is_empty()))
                .unwrap_or_else(|| "default".to_owned());
            profiles
                .profile(&name)
                .and_then(|p| p.get("region"))
                .map(str::to_owned)
        };
        let region = self
            .region
            .clone()
            .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
            .or_else(|| env("AWS_DEFAULT_REGION").filter(|r| !r.is_empty()))
            .or_else(profile_region)
            .or_else(|| method.region().map(str::to_owned));
        let sts_endpoint = match region {
            Some(region) => StsEndpoint::resolve(&region, endpoint_url.as_deref()),
            None => Err(ConfigError::new(
                "region",
                "is required to call STS: set it on the builder, in AWS_REGION or in the profile",
            )),
        };
        let calls_sts = match &method {
            Method::Sts(_) => true,
            other => other.chain().is_some_and(ChainSource::calls_sts),
        };
        if calls_sts {
            // Fail at build time, not at the first refresh.
            sts_endpoint.clone()?;
        }
        Ok(Resolved {
            method,
            device,
            policy,
            retry,
            defer_refresh: self.defer_refresh,
            sts_endpoint,
            http: self.http,
            mfa_command,
            admission: self.admission,
            serve_expired: self.serve_expired,
        })
    }

    fn mfa_command_spec(&self) -> Result<Option<CommandSpec>, ConfigError> {
        let Some(argv) = &self.mfa_command else {
            return Ok(None);
        };
        if self.mfa_token_provider {
            return Err(ConfigError::new(
                "mfa_command",
                "set either an MFA token provider or an MFA command, not both",
            ));
        }
        let Some((program, args)) = argv.split_first() else {
            return Err(ConfigError::new(
                "mfa_command",
                "needs a program to run, such as [\"ykman\", \"oath\", \"accounts\", \"code\"]",
            ));
        };
        if self.mfa_command_timeout.is_zero() {
            return Err(ConfigError::new(
                "mfa_command_timeout",
                "must be greater than zero",
            ));
        }
        Ok(Some(CommandSpec {
            program: program.clone(),
            args: args.to_vec(),
            timeout: self.mfa_command_timeout,
            interactive: true,
        }))
    }
}

/// How long the HTTP calls of a session may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Connecting (the AWS SDKs use a few seconds too).
    pub connect: Duration,
    /// Waiting for each part of the answer.
    pub read: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            read: Duration::from_secs(10),
        }
    }
}

impl HttpTimeouts {
    fn check(&self) -> Result<(), ConfigError> {
        for (field, timeout) in [
            ("connect_timeout", self.connect),
            ("read_timeout", self.read),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        Ok(())
    }
}

/// `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true, as in the AWS SDKs.
fn endpoint_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    env("AWS_ENDPOINT_URL_STS")
        .filter(|v| !v.is_empty())
        .or_else(|| env("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()))
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("method", &self.method)
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("defer_refresh", &self.defer_refresh)
            .field("advisory_timeout", &self.advisory_timeout)
            .field("mandatory_timeout", &self.mandatory_timeout)
            .field("source", &self.source)
            .field("mfa_token_provider", &self.mfa_token_provider)
            .field("serve_expired_on_failure", &self.serve_expired)
            .field("mfa_command", &self.mfa_command)
            .field("mfa_command_timeout", &self.mfa_command_timeout)
            .field("mfa_session", &self.mfa_session)
            .field("http", &self.http)
            .field("max_attempts", &self.max_attempts)
            .field("retry_deadline", &self.retry_deadline)
            .field("clock", &self.clock.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The options every session builder has. Adapters implement
/// [`session_config`](Self::session_config) and get the setters.
pub trait SessionOptions: Sized {
    /// The configuration being built.
    #[doc(hidden)]
    fn session_config(&mut self) -> &mut SessionConfig;

    /// The region STS calls are signed for and sent to; defaults to
    /// `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    fn region(mut self, region: impl Into<String>) -> Self {
        self.session_config().region = Some(region.into());
        self
    }

    /// The STS endpoint instead of the regional one
    /// (`https://sts.<region>.amazonaws.com/`); defaults to
    /// `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`. Plain `http` is
    /// accepted for loopback addresses only.
    fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.session_config().endpoint_url = Some(url.into());
        self
    }

    /// `true` (the default): refresh only when a caller asks. `false`: fetch
    /// at construction and refresh in the background before the advisory
    /// window, so callers never wait.
    fn defer_refresh(mut self, defer: bool) -> Self {
        self.session_config().defer_refresh = defer;
        self
    }

    /// How long before expiry a refresh starts while callers keep getting
    /// the cached credential (default: by the credential's lifetime, as the
    /// AWS SDKs: at most 20 minutes, 5 minutes; under 90, 15 minutes;
    /// longer, 60 minutes; at most half a credential's lifetime is used).
    fn advisory_timeout(mut self, timeout: Duration) -> Self {
        self.session_config().advisory_timeout = Some(timeout);
        self
    }

    /// Static stability, as the AWS SDKs from 2026 (default off): when a
    /// refresh after expiry fails, hand out the expired credential instead
    /// of the error. For IMDS and container credentials, which AWS keeps
    /// honouring during an outage. Off, a session never hands out an
    /// expired credential; either way, one a service rejected as expired
    /// is dropped.
    fn serve_expired_on_failure(mut self, serve: bool) -> Self {
        self.session_config().serve_expired = serve;
        self
    }

    /// How long before expiry callers wait for a refresh instead of using
    /// the cached credential (default 60 s, or the advisory timeout if
    /// smaller; scaled down with it for short-lived credentials).
    fn mandatory_timeout(mut self, timeout: Duration) -> Self {
        self.session_config().mandatory_timeout = Some(timeout);
        self
    }

    /// The credentials that sign STS calls; by default the default chain
    /// finds them (environment, web identity, profile, container, IMDS).
    fn source_credentials(mut self, credentials: Credentials) -> Self {
        self.session_config()
            .use_source(SourceCredentials::Static(credentials));
        self
    }

    /// Runs `argv` (no shell) for an MFA code on every refresh and reads the
    /// last six-digit run of its output, as printed by
    /// `ykman oath accounts code`. Standard input and error stay the
    /// terminal's, so the command can ask for a touch. Requires
    /// `SerialNumber` on the role; excludes an MFA token provider.
    fn mfa_command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.session_config().mfa_command = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// How long the MFA command may run before it is killed (default 60 s).
    fn mfa_command_timeout(mut self, timeout: Duration) -> Self {
        self.session_config().mfa_command_timeout = timeout;
        self
    }

    /// Assumes the role with an MFA session instead of a code per call: an
    /// STS `GetSessionToken` with `serial_number` and one code (from the
    /// MFA token provider or command) gets session credentials that last
    /// `duration` (15 minutes to 36 hours; an hour for the root user), and
    /// every `AssumeRole` is signed with them, without `SerialNumber` or
    /// `TokenCode`: roles whose trust policy requires MFA accept them. A
    /// new code is asked for only when the MFA session nears its expiry or
    /// STS refuses it. The source credentials must be an IAM user's
    /// long-term keys, as `GetSessionToken` requires. On a fleet, all
    /// members share the one MFA session.
    fn mfa_session(mut self, serial_number: impl Into<String>, duration: Duration) -> Self {
        self.session_config().mfa_session =
            Some(GetSessionToken::new(serial_number).duration(duration));
        self
    }

    /// How long connecting to STS may take (default 3 s).
    fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.session_config().http.connect = timeout;
        self
    }

    /// How long STS may take to send each part of its answer (default 10 s).
    fn read_timeout(mut self, timeout: Duration) -> Self {
        self.session_config().http.read = timeout;
        self
    }

    /// How many times a refresh calls STS when it gets throttled, a 5xx
    /// answer or no answer (default 3, the first call included; 1 turns
    /// retries off). Retries back off exponentially with full jitter.
    fn max_attempts(mut self, attempts: u32) -> Self {
        self.session_config().max_attempts = attempts;
        self
    }

    /// How long a refresh may keep retrying, from its first upstream call
    /// (default 30 s).
    fn retry_deadline(mut self, deadline: Duration) -> Self {
        self.session_config().retry_deadline = deadline;
        self
    }

    /// The profile of the shared `config` and `credentials` files the
    /// default chain uses (default `AWS_PROFILE`, else `default`); naming
    /// one skips keys in the environment, as in the AWS CLI.
    fn profile_name(mut self, name: impl Into<String>) -> Self {
        self.session_config().profile_name = Some(name.into());
        self
    }

    /// Reads environment variables (`AWS_PROFILE`, `AWS_REGION`, `HOME`,
    /// ...) from `vars` instead of the process environment: for tests, and
    /// for processes that keep several configurations apart.
    fn environment<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.session_config().environment = Some(Arc::new(vars));
        self
    }

    /// The wall clock the session reads (default: the system clock), for
    /// simulations and tests. A clock that is minutes off still works: the
    /// session corrects for the skew it sees in AWS's answers.
    fn clock(mut self, clock: impl Clock) -> Self {
        self.session_config().clock = Some(Arc::new(clock));
        self
    }
}

impl SessionOptions for SessionConfig {
    fn session_config(&mut self) -> &mut SessionConfig {
        self
    }
}

/// A configuration with every check passed and every default filled in.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) method: Method,
    /// The TLS identity an IoT session's driver must present.
    pub(crate) device: Option<DeviceIdentity>,
    pub(crate) policy: RefreshPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) defer_refresh: bool,
    /// For a custom session without a region this holds why `whoami` cannot
    /// call STS.
    pub(crate) sts_endpoint: Result<StsEndpoint, ConfigError>,
    pub(crate) http: HttpTimeouts,
    pub(crate) mfa_command: Option<CommandSpec>,
    pub(crate) admission: bool,
    pub(crate) serve_expired: bool,
}

#[derive(Debug)]
pub(crate) enum Method {
    Sts(StsMethod),
    Iot(Box<IotRequest>),
    Custom,
    Chain(Box<ChainSource>),
}

/// What an STS session needs for every fetch.
#[derive(Debug)]
pub(crate) struct StsMethod {
    pub(crate) call: StsCall,
    pub(crate) source: RoleSource,
    pub(crate) mfa: Mfa,
}

/// The STS call that gets an STS session's credentials.
#[derive(Debug, Clone)]
pub(crate) enum StsCall {
    AssumeRole(Box<AssumeRole>),
    /// An MFA session.
    SessionToken(Box<GetSessionToken>),
}

/// Where an STS session's signing credentials come from.
#[derive(Debug)]
pub(crate) enum RoleSource {
    Static(Credentials),
    External,
    Chain(Box<ChainSource>),
}

impl RoleSource {
    /// Whether the chain asks for MFA codes (a profile's `mfa_serial`).
    fn needs_mfa(&self) -> bool {
        matches!(self, RoleSource::Chain(chain) if chain.mfa_serials().next().is_some())
    }
}

impl Method {
    /// How errors name the method's credentials.
    pub(crate) fn origin(&self) -> &'static str {
        match self {
            Method::Sts(StsMethod {
                call: StsCall::AssumeRole(_),
                ..
            }) => "STS AssumeRole",
            Method::Sts(StsMethod {
                call: StsCall::SessionToken(_),
                ..
            }) => "STS GetSessionToken",
            Method::Iot(_) => "the IoT credential provider",
            Method::Custom => crate::custom::ORIGIN,
            Method::Chain(_) => "the default credential chain",
        }
    }

    /// The default chain the method draws on, if any.
    pub(crate) fn chain(&self) -> Option<&ChainSource> {
        match self {
            Method::Chain(chain)
            | Method::Sts(StsMethod {
                source: RoleSource::Chain(chain),
                ..
            }) => Some(chain),
            _ => None,
        }
    }

    /// The region the method's own endpoint names, if any.
    fn region(&self) -> Option<&str> {
        match self {
            Method::Iot(request) => request.endpoint.region(),
            _ => None,
        }
    }
}

/// How MFA codes are obtained for an STS call.
#[derive(Debug)]
pub(crate) enum Mfa {
    None,
    /// A `TokenCode` set at build time; taken by the first fetch.
    Static(Option<Secret>),
    /// Asked of the driver for every fetch.
    Provider {
        serial: String,
    },
}

impl Mfa {
    /// `for_chain`: the source's profile roles use the provider, so the
    /// session's own role need not.
    fn resolve(
        serial: Option<&str>,
        code: Option<&Secret>,
        provider: bool,
        for_chain: bool,
    ) -> Result<Self, ConfigError> {
        match (serial, code, provider) {
            (None, None, true) if for_chain => Ok(Mfa::None),
            (_, Some(_), true) => Err(ConfigError::new(
                "TokenCode",
                "set either a static TokenCode or an MFA token provider, not both",
            )),
            (Some(serial), None, true) => Ok(Mfa::Provider {
                serial: serial.to_owned(),
            }),
            (None, None, true) => Err(ConfigError::new(
                "SerialNumber",
                "is required when an MFA token provider is set: set the MFA device's ARN",
            )),
            (_, Some(code), false) => Ok(Mfa::Static(Some(code.clone()))),
            (Some(_), None, false) => Err(ConfigError::new(
                "SerialNumber",
                "is set, but nothing supplies its token codes: set an MFA token provider or a TokenCode",
            )),
            (None, None, false) => Ok(Mfa::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn keys() -> Credentials {
        Credentials::new("AKID", "secret", None, None)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn field_of(config: SessionConfig) -> &'static str {
        config.resolve(&no_env, NOW).unwrap_err().field()
    }

    #[test]
    fn region_comes_from_the_builder_then_the_environment() {
        let config = SessionConfig::assume_role(AssumeRole::new(ROLE)).source_credentials(keys());
        assert_eq!(field_of(config.clone()), "region");
        let env = |key: &str| (key == "AWS_DEFAULT_REGION").then(|| "eu-west-1".to_owned());
        let resolved = config.resolve(&env, NOW).expect("valid");
        let endpoint = resolved.sts_endpoint.expect("endpoint");
        assert_eq!(endpoint.uri(), "https://sts.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn endpoint_env_variables_follow_the_sdk_rules() {
        let env = |key: &str| match key {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AWS_ENDPOINT_URL_STS" => Some("http://127.0.0.1:4566".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1".to_owned()),
            _ => None,
        };
        let config = SessionConfig::assume_role(AssumeRole::new(ROLE)).source_credentials(keys());
        let endpoint = config
            .clone()
            .resolve(&env, NOW)
            .expect("valid")
            .sts_endpoint
            .expect("endpoint");
        assert_eq!(endpoint.uri(), "http://127.0.0.1:4566/");
        let ignore = |key: &str| match key {
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" => Some("true".to_owned()),
            other => env(other),
        };
        let endpoint = config
            .resolve(&ignore, NOW)
            .expect("valid")
            .sts_endpoint
            .expect("endpoint");
        assert_eq!(endpoint.uri(), "https://sts.us-east-1.amazonaws.com/");
    }

    #[test]
    fn mfa_combinations_are_checked() {
        let base = |params: AssumeRole| {
            SessionConfig::assume_role(params)
                .region("us-east-1")
                .source_credentials(keys())
        };
        let serial = "arn:aws:iam::123456789012:mfa/me";
        let mut provider_without_serial = base(AssumeRole::new(ROLE));
        provider_without_serial.use_mfa_token_provider();
        assert_eq!(field_of(provider_without_serial), "SerialNumber");
        let mut both = base(
            AssumeRole::new(ROLE)
                .serial_number(serial)
                .token_code("123456"),
        );
        both.use_mfa_token_provider();
        assert_eq!(field_of(both), "TokenCode");
        assert_eq!(
            field_of(base(AssumeRole::new(ROLE).serial_number(serial))),
            "SerialNumber"
        );
        assert_eq!(
            field_of(base(AssumeRole::new(ROLE).token_code("123456"))),
            "SerialNumber"
        );
        assert_eq!(
            field_of(base(
                AssumeRole::new(ROLE)
                    .serial_number(serial)
                    .token_code("12345")
            )),
            "TokenCode"
        );
        let mut custom = SessionConfig::custom();
        custom.use_mfa_token_provider();
        assert_eq!(field_of(custom), "mfa_token_provider");
        assert_eq!(
            field_of(SessionConfig::custom().mfa_command(["true"])),
            "mfa_command"
        );
        let mut provider_and_command =
            base(AssumeRole::new(ROLE).serial_number(serial)).mfa_command(["true"]);
        provider_and_command.use_mfa_token_provider();
        assert_eq!(field_of(provider_and_command), "mfa_command");
        let no_program =
            base(AssumeRole::new(ROLE).serial_number(serial)).mfa_command(Vec::<OsString>::new());
        assert_eq!(field_of(no_program), "mfa_command");
        let zero = base(AssumeRole::new(ROLE).serial_number(serial))
            .mfa_command(["true"])
            .mfa_command_timeout(Duration::ZERO);
        assert_eq!(field_of(zero), "mfa_command_timeout");
        let resolved = base(AssumeRole::new(ROLE).serial_number(serial))
            .mfa_command(["ykman", "oath"])
            .resolve(&no_env, NOW)
            .expect("a command answers the serial's codes");
        let spec = resolved.mfa_command.expect("spec");
        assert_eq!(spec.program, "ykman");
        assert_eq!(spec.args, ["oath"]);
    }

    #[test]
    fn http_timeouts_must_be_positive() {
        assert_eq!(
            field_of(SessionConfig::custom().connect_timeout(Duration::ZERO)),
            "connect_timeout"
        );
        assert_eq!(
            field_of(SessionConfig::custom().read_timeout(Duration::ZERO)),
            "read_timeout"
        );
    }

    #[test]
    fn custom_sessions_need_no_region_until_whoami() {
        let resolved = SessionConfig::custom()
            .resolve(&no_env, NOW)
            .expect("valid");
        assert_eq!(resolved.sts_endpoint.unwrap_err().field(), "region");
    }

    #[test]
    fn timeouts_are_checked_together() {
        let config = SessionConfig::custom()
            .advisory_timeout(Duration::from_secs(60))
            .mandatory_timeout(Duration::from_secs(61));
        assert_eq!(field_of(config), "mandatory_timeout");
    }

    #[test]
    fn source_credentials_default_to_the_chain() {
        let config = SessionConfig::assume_role(AssumeRole::new(ROLE)).region("us-east-1");
        let description = |env: &dyn Fn(&str) -> Option<String>| {
            let resolved = config.clone().resolve(env, NOW).expect("valid");
            let chain = resolved.method.chain().expect("the default chain");
            chain.description().to_owned()
        };
        let keys = |key: &str| match key {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        assert_eq!(description(&keys), "environment");
        assert_eq!(description(&no_env), "IMDS at http://169.254.169.254");
        let half = |key: &str| (key == "AWS_ACCESS_KEY_ID").then(|| "AKID".to_owned());
        let error = config.resolve(&half, NOW).expect_err("half a pair");
        assert_eq!(error.field(), "AWS_SECRET_ACCESS_KEY");
    }
}
