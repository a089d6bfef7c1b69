//! A fleet of blocking sessions, one per role, region, external id and
//! session name: created on first use, sharing one HTTP client, their STS
//! calls bounded in number at once and paced per second, idle ones
//! dropped.
//!
//! Members refresh when asked: a member's refresh runs on a thread that
//! lives as long as the refresh, so an idle member has no thread, and the
//! fleet's limit on STS calls bounds how many of those threads send at
//! once. Eager members (`defer_refresh(false)`) would each keep a thread
//! for life, so a blocking fleet refuses them; the tokio fleet has them.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use refresh_session_core::fleet::{FleetKey, FleetLimits, FleetOptions};
use refresh_session_core::{ConfigError, Credentials, Error, SessionConfig, SessionOptions};
use refresh_session_io::{FleetMembers, FleetPace, SystemClock};

use crate::session::{Builder, RefreshableSession};
use crate::transport::Transport;

struct Inner {
    members: FleetMembers<Mutex<Option<RefreshableSession>>>,
    template: Builder,
}

/// Blocking sessions by [`FleetKey`], created on first use. Cheap to
/// clone.
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
    /// fetched by its first `credentials()` call). Concurrent first uses
    /// of one key build one session.
    pub fn session(&self, key: &FleetKey) -> Result<RefreshableSession, Error> {
        let member = self.inner.members.member(key);
        // Building a deferred session sends nothing (it reads the shared
        // config files at most): the lock is brief.
        let mut session = member
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = &*session {
            return Ok(session.clone());
        }
        let built = self
            .inner
            .template
            .for_member(key.session_config(self.inner.template.config()))
            .build()?;
        Ok(session.insert(built).clone())
    }

    /// Credentials of the member for `key`.
    pub fn credentials(&self, key: &FleetKey) -> Result<Arc<Credentials>, Error> {
        self.session(key)?.credentials()
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
/// limits from [`FleetOptions`]; a source session or MFA token provider
/// from the session builder they are given to,
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
    /// options: `source_session`, `mfa_token_provider`.
    ///
    /// ```no_run
    /// # use refresh_session_blocking::{RefreshableSession, SessionFleet};
    /// # let source = RefreshableSession::default_chain().build()?;
    /// let fleet = SessionFleet::builder()
    ///     .sessions(|members| members.source_session(&source));
    /// # Ok::<(), refresh_session_blocking::Error>(())
    /// ```
    pub fn sessions(mut self, configure: impl FnOnce(Builder) -> Builder) -> Self {
        self.template = configure(self.template);
        self
    }

    /// Checks the options and builds the (empty) fleet.
    pub fn build(mut self) -> Result<SessionFleet, ConfigError> {
        let pacer = self.limits.check()?;
        let config = self.template.config();
        if !config.defers_refresh() {
            return Err(ConfigError::new(
                "defer_refresh",
                "a blocking fleet's members refresh when asked: eager ones would keep a thread each (use the tokio fleet for eager members)",
            ));
        }
        let clock = SessionConfig::clock(config).unwrap_or_else(|| Arc::new(SystemClock));
        let admission = Admission {
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
            max: self.limits.max_concurrent(),
            pace: FleetPace::new(pacer, clock),
        };
        let transport = Transport::new(config.http_timeouts(), None);
        self.template = self.template.transport(transport);
        if let Some(mfa) = self.template.session_config().take_mfa_session()? {
            // Deferred: building it reads the shared files at most.
            let mfa_session = self.template.for_member(mfa).build().map_err(|e| match e {
                Error::Config(e) => e,
                other => ConfigError::new("mfa_session", other.to_string()),
            })?;
            self.template = self.template.source_session(&mfa_session);
        }
        self.template = self.template.admission(admission);
        Ok(SessionFleet {
            inner: Arc::new(Inner {
                members: FleetMembers::new(&self.limits),
                template: self.template,
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

/// The fleet's limit on its STS calls: at most so many at once, paced.
pub(crate) struct Admission {
    in_flight: Mutex<usize>,
    freed: Condvar,
    max: usize,
    pace: FleetPace,
}

impl Admission {
    /// Waits for a free slot, then for the pacer's turn: a member's
    /// refresh starts (and signs its requests) only then, and holds the
    /// slot until the returned guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> Slot {
        let in_flight = self.in_flight();
        let mut in_flight = self
            .freed
            .wait_while(in_flight, |n| *n >= self.max)
            .unwrap_or_else(PoisonError::into_inner);
        *in_flight += 1;
        drop(in_flight);
        let wait = self.pace.wait();
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Slot(Arc::clone(self))
    }

    fn in_flight(&self) -> MutexGuard<'_, usize> {
        // Only counts are kept under the lock: never inconsistent.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("max", &self.max)
            .field("paced", &self.pace.is_paced())
            .finish_non_exhaustive()
    }
}

/// A refresh's slot in the fleet's limit.
pub(crate) struct Slot(Arc<Admission>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.in_flight() -= 1;
        self.0.freed.notify_one();
    }
}
