//! A fleet of sessions, one per role, region, external id and session
//! name, for a service that works across hundreds of accounts: created on
//! first use, sharing one HTTP client, their STS calls bounded in number at
//! once and paced per second, idle ones dropped.
//!
//! Members refresh when asked (deferred, by default): a session in its
//! advisory window hands out its cached credential and starts one refresh,
//! so a fleet has no task or thread per session, and a role nobody uses
//! costs no STS call. Pacing delays refreshes, never callers with a usable
//! credential: the advisory window (five minutes by default) absorbs it.

use std::fmt;
use std::sync::Arc;

use refresh_session_core::engine::Permit;
use refresh_session_core::error::Panicked;
use refresh_session_core::fleet::{FleetKey, FleetLimits, FleetOptions};
use refresh_session_core::{ConfigError, Credentials, Error, SessionConfig, SessionOptions};
use refresh_session_io::{FleetMembers, FleetPace, SystemClock, unwind};
use tokio::sync::{OnceCell, Semaphore};

use crate::hooks::Hooks;
use crate::runtime::Runtime;
use crate::session::{Builder, RefreshableSession};
use crate::transport::HttpTransport;

struct Inner {
    members: FleetMembers<OnceCell<RefreshableSession>>,
    template: SessionConfig,
    hooks: Hooks,
    transport: Arc<dyn HttpTransport>,
    runtime: Arc<dyn Runtime>,
    admission: Arc<Admission>,
    /// The MFA session every member signs with (`mfa_session`), built with
    /// the first member.
    mfa_session: Option<(SessionConfig, OnceCell<RefreshableSession>)>,
}

/// Sessions by [`FleetKey`], created on first use. Cheap to clone.
#[derive(Clone)]
pub struct SessionFleet {
    inner: Arc<Inner>,
}

impl SessionFleet {
    /// A fleet builder; the session options set on it apply to every
    /// member.
    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            template: Builder::new(SessionConfig::fleet()),
            limits: FleetLimits::default(),
        }
    }

    /// The member for `key`, built on first use (its first credential is
    /// fetched by its first `credentials()` call, as for any deferred
    /// session). Concurrent first uses of one key build one session.
    pub async fn session(&self, key: &FleetKey) -> Result<RefreshableSession, Error> {
        let member = self.inner.members.member(key);
        member
            .session
            .get_or_try_init(|| self.build(key))
            .await
            .cloned()
    }

    /// Credentials of the member for `key`.
    pub async fn credentials(&self, key: &FleetKey) -> Result<Arc<Credentials>, Error> {
        self.session(key).await?.credentials().await
    }

    /// How many members the fleet holds.
    pub fn len(&self) -> usize {
        self.inner.members.len()
    }

    /// Whether the fleet holds no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the members unused for the idle timeout; returns how many.
    /// The fleet also does this as it is used. Clones of a dropped
    /// member's session keep working.
    pub fn evict_idle(&self) -> usize {
        self.inner.members.evict_idle()
    }

    async fn build(&self, key: &FleetKey) -> Result<RefreshableSession, Error> {
        let mut builder = Builder::new(key.session_config(&self.inner.template));
        builder.hooks = self.inner.hooks.clone();
        builder.transport = Some(self.inner.transport.clone());
        builder.runtime = Some(self.inner.runtime.clone());
        if let Some((config, session)) = &self.inner.mfa_session {
            let mfa_session = session
                .get_or_try_init(|| builder.for_source(config.clone()).build())
                .await?;
            builder = builder.source_session(mfa_session);
        }
        builder.admission = Some(self.inner.admission.clone());
        builder.build().await
    }
}

impl fmt::Debug for SessionFleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFleet")
            .field("members", &self.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SessionFleet`]. The shared options (region, timeouts,
/// source credentials, ...) come from [`SessionOptions`], the fleet's
/// limits from [`FleetOptions`]; the source provider, transport and
/// runtime from the session builder they are given to,
/// [`sessions`](Self::sessions).
#[must_use = "a builder does nothing until `build` is called"]
pub struct FleetBuilder {
    /// What every member's builder starts from.
    template: Builder,
    limits: FleetLimits,
}

impl SessionOptions for FleetBuilder {
    fn session_config(&mut self) -> &mut SessionConfig {
        self.template.session_config()
    }
}

impl FleetOptions for FleetBuilder {
    fn fleet_limits(&mut self) -> &mut FleetLimits {
        &mut self.limits
    }
}

impl FleetBuilder {
    /// Sets what the members' session builder offers beyond the shared
    /// options: `source_provider`, `source_session`, `transport` (the
    /// client every member sends through), `runtime`.
    ///
    /// ```no_run
    /// # use refresh_session_tokio::{SessionFleet, Credentials};
    /// let fleet = SessionFleet::builder()
    ///     .sessions(|members| members.source_provider(|| async {
    ///         Ok(Credentials::new("AKIDEXAMPLE", "secret", None, None))
    ///     }));
    /// ```
    pub fn sessions(mut self, configure: impl FnOnce(Builder) -> Builder) -> Self {
        self.template = configure(self.template);
        self
    }

    /// Checks the options and builds the (empty) fleet.
    pub fn build(self) -> Result<SessionFleet, ConfigError> {
        let pacer = self.limits.check()?;
        let Builder {
            mut config,
            hooks,
            runtime,
            transport,
            ..
        } = self.template;
        let mfa_session = config.take_mfa_session()?.map(|mfa| (mfa, OnceCell::new()));
        config.use_admission();
        let runtime = match runtime {
            Some(runtime) => runtime,
            None => crate::session::default_runtime()?,
        };
        let transport = match transport {
            Some(transport) => transport,
            None => crate::session::default_transport(config.http_timeouts(), None)?,
        };
        let clock = SessionConfig::clock(&config).unwrap_or_else(|| Arc::new(SystemClock));
        let admission = Arc::new(Admission {
            in_flight: Arc::new(Semaphore::new(self.limits.max_concurrent())),
            pace: FleetPace::new(pacer, clock),
        });
        Ok(SessionFleet {
            inner: Arc::new(Inner {
                members: FleetMembers::new(&self.limits),
                template: config,
                hooks,
                transport,
                runtime,
                admission,
                mfa_session,
            }),
        })
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("template", &self.template)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The fleet's bound and pace on its members' refreshes: a refresh starts
/// (and signs its requests) once it has a slot and its turn.
pub(crate) struct Admission {
    in_flight: Arc<Semaphore>,
    pace: FleetPace,
}

impl Admission {
    /// Waits for a slot, then for the pace; the refresh holds the slot
    /// until the returned permit drops. The pause is a sleep of `runtime`.
    pub(crate) async fn enter(&self, runtime: &dyn Runtime) -> Result<Permit, Panicked> {
        let slot = Arc::clone(&self.in_flight).acquire_owned().await;
        let wait = self.pace.wait();
        if !wait.is_zero() {
            const WHAT: &str = "runtime's timer";
            let sleep = unwind::guarded(WHAT, || runtime.sleep(wait))?;
            unwind::guarded_future(WHAT, sleep).await?;
        }
        // The semaphore is never closed: a slot always comes.
        Ok(Permit::new(slot.ok()))
    }
}
