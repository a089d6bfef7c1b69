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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use refresh_session_core::error::{TransportError, TransportErrorKind};
use refresh_session_core::iot::TlsIdentity;
use refresh_session_core::pace::Pacer;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Clock, ConfigError, Credentials, Error, SessionConfig, SessionOptions};
use refresh_session_io::SystemClock;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore};

use crate::hooks::Hooks;
use crate::runtime::{BoxFuture, Runtime};
use crate::session::{Builder, RefreshableSession};
use crate::transport::HttpTransport;

/// Which member of a fleet: the role and what else makes its session
/// differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FleetKey {
    role_arn: String,
    region: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
}

impl FleetKey {
    /// The session for `role_arn`, in the fleet's region.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            region: None,
            external_id: None,
            session_name: None,
        }
    }

    /// In `region` instead of the fleet's.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// With this `ExternalId`.
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// With this `RoleSessionName` instead of a generated one.
    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = Some(name.into());
        self
    }

    fn assume_role(&self) -> AssumeRole {
        let mut role = AssumeRole::new(&self.role_arn);
        if let Some(id) = &self.external_id {
            role = role.external_id(id);
        }
        if let Some(name) = &self.session_name {
            role = role.role_session_name(name);
        }
        role
    }
}

struct Member {
    session: OnceCell<RefreshableSession>,
    /// Seconds since the fleet started, at the last use.
    last_used: AtomicU64,
}

struct Inner {
    members: RwLock<HashMap<FleetKey, Arc<Member>>>,
    template: SessionConfig,
    hooks: Hooks,
    transport: Arc<dyn HttpTransport>,
    runtime: Arc<dyn Runtime>,
    idle_timeout: Duration,
    started: Instant,
    last_sweep: AtomicU64,
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
            template: Builder::new(SessionConfig::custom()),
            max_concurrent: 16,
            max_per_second: None,
            idle_timeout: Duration::from_secs(3600),
        }
    }

    /// The member for `key`, built on first use (its first credential is
    /// fetched by its first `credentials()` call, as for any deferred
    /// session). Concurrent first uses of one key build one session.
    pub async fn session(&self, key: &FleetKey) -> Result<RefreshableSession, Error> {
        let member = self.member(key);
        member
            .last_used
            .store(self.inner.seconds(), Ordering::Relaxed);
        // After the touch, so that the sweep keeps the member in use.
        self.sweep_if_due();
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
        self.read().len()
    }

    /// Whether the fleet holds no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the members unused for the idle timeout; returns how many.
    /// The fleet also does this as it is used. Clones of a dropped
    /// member's session keep working.
    pub fn evict_idle(&self) -> usize {
        let now = self.inner.seconds();
        self.inner.last_sweep.store(now, Ordering::Relaxed);
        let idle = self.inner.idle_timeout.as_secs();
        let mut members = self.write();
        let before = members.len();
        members.retain(|_, m| now.saturating_sub(m.last_used.load(Ordering::Relaxed)) < idle);
        before - members.len()
    }

    fn sweep_if_due(&self) {
        let due = self.inner.last_sweep.load(Ordering::Relaxed)
            + (self.inner.idle_timeout.as_secs() / 4).max(1);
        if self.inner.seconds() >= due {
            self.evict_idle();
        }
    }

    fn member(&self, key: &FleetKey) -> Arc<Member> {
        if let Some(member) = self.read().get(key) {
            return member.clone();
        }
        let mut members = self.write();
        members
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Member {
                    session: OnceCell::new(),
                    last_used: AtomicU64::new(self.inner.seconds()),
                })
            })
            .clone()
    }

    async fn build(&self, key: &FleetKey) -> Result<RefreshableSession, Error> {
        let mut config = self.inner.template.for_role(key.assume_role());
        if let Some(region) = &key.region {
            config = config.region(region);
        }
        let mut builder = Builder::new(config);
        builder.hooks = self.inner.hooks.clone();
        builder.transport = Some(self.inner.transport.clone());
        builder.runtime = Some(self.inner.runtime.clone());
        builder.build().await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<FleetKey, Arc<Member>>> {
        // Nothing panics while holding the lock; the map stays consistent.
        self.inner
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<FleetKey, Arc<Member>>> {
        self.inner
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
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
/// source credentials, ...) come from [`SessionOptions`]; the source
/// provider, transport and runtime from the session builder they are
/// given to, [`sessions`](Self::sessions).
#[must_use = "a builder does nothing until `build` is called"]
pub struct FleetBuilder {
    /// What every member's builder starts from.
    template: Builder,
    max_concurrent: usize,
    max_per_second: Option<f64>,
    idle_timeout: Duration,
}

impl SessionOptions for FleetBuilder {
    fn session_config(&mut self) -> &mut SessionConfig {
        self.template.session_config()
    }
}

impl FleetBuilder {
    /// How many STS calls may be in flight at once across the fleet
    /// (default 16).
    pub fn max_concurrent_refreshes(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// Paces the fleet's STS calls to this many per second, evenly spaced
    /// (default: unpaced). 1.8 times the mean a fleet needs (sessions
    /// divided by the credential lifetime less the advisory timeout) keeps
    /// every second under twice the mean without making callers wait (see
    /// `docs/benchmarks.md`).
    pub fn max_refreshes_per_second(mut self, rate: f64) -> Self {
        self.max_per_second = Some(rate);
        self
    }

    /// Drops members unused for this long (default an hour; at least a
    /// second).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

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
        if self.max_concurrent == 0 {
            return Err(ConfigError::new(
                "max_concurrent_refreshes",
                "must be at least 1",
            ));
        }
        // Use is tracked in whole seconds.
        if self.idle_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "idle_timeout",
                "must be at least one second",
            ));
        }
        let pacer = self
            .max_per_second
            .map(|rate| Pacer::new(rate, 1))
            .transpose()?;
        let Builder {
            config,
            hooks,
            runtime,
            transport,
        } = self.template;
        let runtime = match runtime {
            Some(runtime) => runtime,
            None => crate::session::default_runtime()?,
        };
        let inner = match transport {
            Some(transport) => transport,
            None => crate::session::default_transport(config.http_timeouts(), None)?,
        };
        let clock = SessionConfig::clock(&config).unwrap_or_else(|| Arc::new(SystemClock));
        let transport = Arc::new(Paced {
            inner,
            in_flight: Semaphore::new(self.max_concurrent),
            pacer: pacer.map(Mutex::new),
            clock,
            runtime: runtime.clone(),
        });
        Ok(SessionFleet {
            inner: Arc::new(Inner {
                members: RwLock::default(),
                template: config,
                hooks,
                transport,
                runtime,
                idle_timeout: self.idle_timeout,
                started: Instant::now(),
                last_sweep: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("template", &self.template)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_per_second", &self.max_per_second)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// The fleet's one transport: at most so many requests at once, paced.
struct Paced {
    inner: Arc<dyn HttpTransport>,
    in_flight: Semaphore,
    pacer: Option<Mutex<Pacer>>,
    clock: Arc<dyn Clock>,
    runtime: Arc<dyn Runtime>,
}

impl HttpTransport for Paced {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        Box::pin(async move {
            let _permit = self.in_flight.acquire().await.map_err(|_| {
                TransportError::new(TransportErrorKind::Io, "the fleet has shut down")
            })?;
            if let Some(pacer) = &self.pacer {
                let now = OffsetDateTime::from(self.clock.now());
                let wait = pacer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .admit(now);
                if !wait.is_zero() {
                    self.runtime.sleep(wait).await;
                }
            }
            self.inner.send(request, tls).await
        })
    }
}
