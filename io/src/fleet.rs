//! A fleet's members on the monotonic clock: the core's [`Members`] keep
//! time as whole seconds given to them; this reads them from an `Instant`
//! taken when the fleet started, for both adapters' fleets.

use std::sync::Arc;
use std::time::Instant;

use refresh_session_core::fleet::{FleetKey, FleetLimits, Member, Members};

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
