//! A fleet's members under concurrent use: lookups racing idle sweeps and
//! the member cap never make two members (two sessions) for one key.

use std::sync::Arc;
use std::time::Duration;

use refresh_session_core::fleet::{FleetKey, FleetLimits, FleetOptions, Members};

/// The limits a fleet builder would make: a one-second idle timeout and
/// room for two members.
struct Limits(FleetLimits);

impl FleetOptions for Limits {
    fn fleet_limits(&mut self) -> &mut FleetLimits {
        &mut self.0
    }
}

#[test]
fn lookups_racing_sweeps_never_make_two_members_for_a_key() {
    let limits = Limits(FleetLimits::default())
        .idle_timeout(Duration::from_secs(1))
        .max_members(2);
    let members: Members<()> = Members::new(&limits.0);
    let accounts = ["111111111111", "222222222222", "333333333333"];
    std::thread::scope(|scope| {
        for (i, account) in accounts.iter().enumerate() {
            let members = &members;
            scope.spawn(move || {
                let key = FleetKey::new(format!("arn:aws:iam::{account}:role/worker"));
                for round in 0..2_000u64 {
                    let now = round / 10;
                    let member = members.member(&key, now);
                    let again = members.member(&key, now);
                    assert!(Arc::ptr_eq(&member, &again), "{account} at {now}");
                    if round % 7 == i as u64 {
                        members.evict_idle(now + 5);
                    }
                }
            });
        }
    });
}
