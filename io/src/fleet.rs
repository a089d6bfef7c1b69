//! What both adapters' fleets read a clock for: their members on the
//! monotonic clock (the core's [`Members`] keep time as whole seconds given
//! to them; this reads them from an `Instant` taken when the fleet
//! started), and the pace of their refreshes on the session clock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use std::time::Instant;

use refresh_session_core::Clock;
use refresh_session_core::fleet::{FleetKey, FleetLimits, Member, Members};
use refresh_session_core::pace::Pacer;
use time::OffsetDateTime;

/// [`Members`] with their clock.
#[derive(Debug)]
pub struct FleetMembers<S> {
    members: Members<S>,
    started: Instant,
}

impl<S: Default> FleetMembers<S> {
    /// No members yet; `limits` say when they go.
    pub fn new(limits: &FleetLimits) -> Self {
        Self {
            members: Members::new(limits),
            started: Instant::now(),
        }
    }

    /// The member for `key`, used now (see [`Members::member`]).
    pub fn member(&self, key: &FleetKey) -> Arc<Member<S>> {
        self.members.member(key, self.seconds())
    }

    /// Drops the members unused for the idle timeout; returns how many.
    pub fn evict_idle(&self) -> usize {
        self.members.evict_idle(self.seconds())
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whole seconds since the fleet started: the members' time.
    fn seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// The pace of a fleet's refreshes: the core's [`Pacer`] read at the
/// session clock.
pub struct FleetPace {
    pacer: Option<Mutex<Pacer>>,
    clock: Arc<dyn Clock>,
}

impl FleetPace {
    /// Paces by `pacer` (`None`: unpaced) at `clock`'s time.
    pub fn new(pacer: Option<Pacer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            pacer: pacer.map(Mutex::new),
            clock,
        }
    }

    /// How long the next refresh waits for its turn (zero: go now).
    pub fn wait(&self) -> Duration {
        let Some(pacer) = &self.pacer else {
            return Duration::ZERO;
        };
        let now = OffsetDateTime::from(self.clock.now());
        // Only the schedule is kept under the lock: never inconsistent.
        pacer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(now)
    }

    /// Whether refreshes are paced at all.
    pub fn is_paced(&self) -> bool {
        self.pacer.is_some()
    }
}
