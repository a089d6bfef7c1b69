//! What a fleet of sessions is, whatever drives it: the key of a member
//! (role, region, external id, session name), the members by key with
//! when each was last used, and the limits on the fleet's STS calls. The
//! adapters hold the sessions in the members and keep the time: whole
//! seconds since the fleet started, passed in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::config::{SessionConfig, SessionOptions};
use crate::error::ConfigError;
use crate::pace::Pacer;
use crate::sts::AssumeRole;

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

    /// The member's configuration: the fleet's `template` for this role,
    /// in this key's region if it has one.
    pub fn session_config(&self, template: &SessionConfig) -> SessionConfig {
        let mut role = AssumeRole::new(&self.role_arn);
        if let Some(id) = &self.external_id {
            role = role.external_id(id);
        }
        if let Some(name) = &self.session_name {
            role = role.role_session_name(name);
        }
        let config = template.for_role(role);
        match &self.region {
            Some(region) => config.region(region),
            None => config,
        }
    }
}

/// How a fleet limits its STS calls and keeps its members. Set through
/// [`FleetOptions`].
#[derive(Debug, Clone)]
pub struct FleetLimits {
    max_concurrent: usize,
    max_per_second: Option<f64>,
    idle_timeout: Duration,
    max_members: Option<usize>,
}

impl Default for FleetLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 16,
            max_per_second: None,
            idle_timeout: Duration::from_secs(3600),
            max_members: None,
        }
    }
}

impl FleetLimits {
    /// Checks the limits; returns the pacer of the fleet's STS calls, if
    /// they are paced.
    pub fn check(&self) -> Result<Option<Pacer>, ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::new(
                "max_concurrent_refreshes",
                "must be at least 1",
            ));
        }
        if self.max_members == Some(0) {
            return Err(ConfigError::new("max_members", "must be at least 1"));
        }
        // Use is tracked in whole seconds.
        if self.idle_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "idle_timeout",
                "must be at least one second",
            ));
        }
        self.max_per_second
            .map(|rate| Pacer::new(rate, 1))
            .transpose()
    }

    /// How many STS calls may be in flight at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// How long a member may go unused before it is dropped.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How many members the fleet keeps at most, if it is bounded.
    pub fn max_members(&self) -> Option<usize> {
        self.max_members
    }
}

/// The fleet options both adapters' fleet builders take.
pub trait FleetOptions: Sized {
    /// The limits being built.
    #[doc(hidden)]
    fn fleet_limits(&mut self) -> &mut FleetLimits;

    /// How many STS calls may be in flight at once across the fleet
    /// (default 16).
    fn max_concurrent_refreshes(mut self, calls: usize) -> Self {
        self.fleet_limits().max_concurrent = calls;
        self
    }

    /// Paces the fleet's STS calls to this many per second, evenly spaced
    /// (default: unpaced). 1.8 times the mean a fleet needs (sessions
    /// divided by the credential lifetime less the advisory timeout) keeps
    /// every second under twice the mean without making callers wait (see
    /// `docs/benchmarks.md`).
    fn max_refreshes_per_second(mut self, rate: f64) -> Self {
        self.fleet_limits().max_per_second = Some(rate);
        self
    }

    /// Drops members unused for this long (default an hour; at least a
    /// second).
    fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.fleet_limits().idle_timeout = timeout;
        self
    }

    /// Keeps at most this many members (default: no bound): a new one
    /// drops the least recently used that no call is using at the moment.
    fn max_members(mut self, members: usize) -> Self {
        self.fleet_limits().max_members = Some(members);
        self
    }
}

/// One member: the adapter's session cell `S`, and when it was last used.
#[derive(Debug, Default)]
pub struct Member<S> {
    /// The adapter's cell for the member's session, built on first use.
    pub session: S,
    /// Seconds since the fleet started, at the last use.
    last_used: AtomicU64,
    /// The fleet's count of uses at the last use: orders uses within a
    /// second.
    last_use: AtomicU64,
}

/// The members of a fleet by key. Idle ones are dropped as the fleet is
/// used: a sweep at most every quarter of the idle timeout; past
/// `max_members`, the least recently used goes. A member that a call holds
/// (its `Arc` is out of the map) is in use: neither drops it, so a key
/// never has two sessions at once.
#[derive(Debug)]
pub struct Members<S> {
    map: RwLock<HashMap<FleetKey, Arc<Member<S>>>>,
    idle_secs: u64,
    max_members: Option<usize>,
    last_sweep: AtomicU64,
    /// Uses so far, for least recently used.
    uses: AtomicU64,
}

impl<S: Default> Members<S> {
    /// No members yet; `limits` say when they go.
    pub fn new(limits: &FleetLimits) -> Self {
        Self {
            map: RwLock::default(),
            idle_secs: limits.idle_timeout.as_secs(),
            max_members: limits.max_members,
            last_sweep: AtomicU64::new(0),
            uses: AtomicU64::new(0),
        }
    }

    /// The member for `key`, new and empty if the fleet had none, used at
    /// `now` (seconds since the fleet started). Sweeps idle members if a
    /// sweep is due.
    pub fn member(&self, key: &FleetKey, now: u64) -> Arc<Member<S>> {
        let member = self.get_or_insert(key, now);
        let due = self
            .last_sweep
            .load(Ordering::Relaxed)
            .saturating_add((self.idle_secs / 4).max(1));
        if now >= due {
            self.evict_idle(now);
        }
        member
    }

    /// Drops the members unused for the idle timeout at `now` that no call
    /// holds; returns how many.
    pub fn evict_idle(&self, now: u64) -> usize {
        self.last_sweep.store(now, Ordering::Relaxed);
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, m| in_use(m) || now.saturating_sub(m.used()) < self.idle_secs);
        before - map.len()
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The member, marked used at `now` under the lock, so that no sweep
    /// sees it unused between the lookup and the mark.
    fn get_or_insert(&self, key: &FleetKey, now: u64) -> Arc<Member<S>> {
        if let Some(member) = self.read().get(key) {
            self.touch(member, now);
            return member.clone();
        }
        let mut map = self.write();
        let member = map
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Member::default()))
            .clone();
        self.touch(&member, now);
        if let Some(max) = self.max_members {
            while map.len() > max && evict_least_recently_used(&mut map, key) {}
        }
        member
    }

    fn touch(&self, member: &Member<S>, now: u64) {
        member.last_used.store(now, Ordering::Relaxed);
        let count = self.uses.fetch_add(1, Ordering::Relaxed);
        member.last_use.store(count, Ordering::Relaxed);
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<FleetKey, Arc<Member<S>>>> {
        // Nothing panics while holding the lock; the map stays consistent.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<FleetKey, Arc<Member<S>>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Member<S> {
    fn used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// Whether a call holds the member (the map holds one reference).
fn in_use<S>(member: &Arc<Member<S>>) -> bool {
    Arc::strong_count(member) > 1
}

/// Drops the least recently used member other than `kept` that no call
/// holds; returns whether there was one.
fn evict_least_recently_used<S>(
    map: &mut HashMap<FleetKey, Arc<Member<S>>>,
    kept: &FleetKey,
) -> bool {
    let oldest = map
        .iter()
        .filter(|(key, member)| *key != kept && !in_use(member))
        .min_by_key(|(_, member)| member.last_use.load(Ordering::Relaxed))
        .map(|(key, _)| key.clone());
    oldest.is_some_and(|key| map.remove(&key).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(account: &str) -> FleetKey {
        FleetKey::new(format!("arn:aws:iam::{account}:role/worker"))
    }

    fn limits(idle_secs: u64, max_members: Option<usize>) -> FleetLimits {
        FleetLimits {
            idle_timeout: Duration::from_secs(idle_secs),
            max_members,
            ..FleetLimits::default()
        }
    }

    #[test]
    fn past_max_members_the_least_recently_used_goes() {
        let members: Members<()> = Members::new(&limits(3600, Some(2)));
        members.member(&key("111111111111"), 0);
        members.member(&key("222222222222"), 1);
        members.member(&key("111111111111"), 2);
        members.member(&key("333333333333"), 3);
        assert_eq!(members.len(), 2);
        let kept = members.read();
        assert!(kept.contains_key(&key("111111111111")), "used at 2");
        assert!(
            !kept.contains_key(&key("222222222222")),
            "used at 1: the oldest"
        );
    }

    #[test]
    fn a_member_held_by_a_call_survives_sweeps_and_the_cap() {
        let members: Members<()> = Members::new(&limits(60, Some(1)));
        let held = members.member(&key("111111111111"), 0);
        assert_eq!(members.evict_idle(600), 0, "idle, but in use");
        members.member(&key("222222222222"), 601);
        assert_eq!(
            members.len(),
            2,
            "over the cap rather than drop a member in use"
        );
        let again = members.member(&key("111111111111"), 602);
        assert!(Arc::ptr_eq(&held, &again), "one member per key");
        drop((held, again));
        members.member(&key("333333333333"), 603);
        assert_eq!(
            members.len(),
            1,
            "back under the cap once nothing holds them"
        );
    }

    #[test]
    fn one_member_per_key() {
        let members: Members<()> = Members::new(&limits(60, None));
        let first = members.member(&key("111111111111"), 0);
        let again = members.member(&key("111111111111"), 1);
        assert!(Arc::ptr_eq(&first, &again));
        members.member(&key("111111111111").region("eu-west-1"), 1);
        members.member(&key("111111111111").external_id("tenant"), 1);
        assert_eq!(members.len(), 3, "region and external id make a new key");
    }

    #[test]
    fn members_unused_for_the_idle_timeout_go_at_the_next_sweep() {
        let members: Members<()> = Members::new(&limits(60, None));
        members.member(&key("111111111111"), 0);
        members.member(&key("222222222222"), 20);
        assert_eq!(members.evict_idle(59), 0, "neither has been idle a minute");
        // A use at 70 is before the next sweep (due 15 s after the last).
        members.member(&key("333333333333"), 70);
        assert_eq!(members.len(), 3);
        // A use at 75 sweeps: the member unused since 0 goes, the one
        // unused since 20 stays.
        members.member(&key("333333333333"), 75);
        assert_eq!(members.len(), 2);
        assert_eq!(members.evict_idle(130), 1, "only the one used at 75 stays");
        assert_eq!(members.len(), 1);
    }

    #[test]
    fn nonsense_limits_name_their_option() {
        let mut limits = FleetLimits {
            max_concurrent: 0,
            ..FleetLimits::default()
        };
        let error = limits.check().expect_err("refused");
        assert!(error.to_string().contains("max_concurrent_refreshes"));
        limits.max_concurrent = 1;
        limits.idle_timeout = Duration::from_millis(500);
        let error = limits.check().expect_err("refused");
        assert!(error.to_string().contains("idle_timeout"));
        limits.idle_timeout = Duration::from_secs(1);
        limits.max_per_second = Some(0.0);
        let error = limits.check().expect_err("refused");
        assert!(error.to_string().contains("max_refreshes_per_second"));
        limits.max_per_second = Some(2.0);
        assert!(limits.check().expect("valid").is_some(), "paced");
    }
}
