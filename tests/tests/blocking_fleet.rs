//! A fleet of blocking sessions against the loopback STS: one session per
//! key built on first use, STS calls bounded in number at once (counted by
//! the server) and paced, idle members dropped, eager members refused.

use std::time::Duration;

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{FleetBuilder, SessionFleet};
use refresh_session_tests::faults::Fault;
use refresh_session_tests::fleet::{
    ACCOUNTS, PAST_EXPIRY, assert_static_stability, key, roles, short_lived_sts, sts,
};
use refresh_session_tests::sts_server::LoopbackSts;

fn fleet(sts: &LoopbackSts) -> FleetBuilder {
    SessionFleet::builder()
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDFLEET", "fleet-secret", None, None))
}

/// Asks the fleet for every account's credentials at once, on threads of
/// their own; panics if any fails.
fn all_at_once(fleet: &SessionFleet, accounts: &[&str]) {
    std::thread::scope(|scope| {
        let threads: Vec<_> = accounts
            .iter()
            .map(|account| scope.spawn(|| fleet.credentials(&key(account))))
            .collect();
        for thread in threads {
            thread.join().expect("no panic").expect("credentials");
        }
    });
}

#[test]
fn one_session_per_key_built_on_first_use() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts).build().expect("valid");
    let callers: Vec<&str> = (0..5).flat_map(|_| ACCOUNTS[..3].iter().copied()).collect();
    all_at_once(&fleet, &callers);
    assert_eq!(fleet.len(), 3);
    assert_eq!(sts.assume_role_calls(), 3, "one AssumeRole per key");
    let mut asked: Vec<String> = sts
        .requests()
        .iter()
        .filter_map(|form| form.get("RoleArn").cloned())
        .collect();
    asked.sort();
    assert_eq!(asked, roles(&ACCOUNTS[..3]));
    // The external id and region are part of the key.
    let other = key(ACCOUNTS[0]).external_id("tenant-7");
    fleet.credentials(&other).expect("credentials");
    let form = sts.requests().pop().expect("a request");
    assert_eq!(form.get("ExternalId").map(String::as_str), Some("tenant-7"));
    fleet
        .credentials(&key(ACCOUNTS[0]).region("eu-west-1"))
        .expect("credentials");
    assert_eq!((fleet.len(), sts.assume_role_calls()), (5, 5));
}

#[test]
fn sts_calls_in_flight_are_bounded() {
    let sts = sts(Duration::from_millis(300));
    let fleet = fleet(&sts)
        .max_concurrent_refreshes(2)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS);
    assert_eq!(sts.assume_role_calls(), 6);
    assert_eq!(sts.most_in_flight(), 2, "two at once, never more");
}

#[test]
fn sts_calls_are_paced() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts)
        .max_concurrent_refreshes(1)
        .max_refreshes_per_second(4.0)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS[..4]);
    let issued = sts.issued();
    assert_eq!(issued.len(), 4);
    for pair in issued.windows(2) {
        let gap = pair[1].issued_at - pair[0].issued_at;
        // 250 ms apart at four per second; the margin is the loopback's.
        assert!(gap >= Duration::from_millis(200), "calls {gap} apart");
    }
}

/// STS here accepts a request signed at most a second before it arrives.
/// At two refreshes a second, the sixth member's turn comes 2.5 s after the
/// first: it is signed when its turn comes, not when it was asked for.
#[test]
fn a_paced_cold_start_signs_each_request_when_its_turn_comes() {
    let sts = sts(Duration::ZERO);
    sts.set_signing_leeway(Duration::from_secs(1));
    let fleet = fleet(&sts)
        .max_concurrent_refreshes(ACCOUNTS.len())
        .max_refreshes_per_second(2.0)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS);
    let issued = sts.issued();
    assert_eq!(issued.len(), ACCOUNTS.len());
    let spread = issued[ACCOUNTS.len() - 1].issued_at - issued[0].issued_at;
    assert!(spread >= Duration::from_secs(2), "paced over {spread}");
    assert_eq!(sts.stale_signatures(), 0);
}

#[test]
fn past_max_members_the_least_recently_used_member_goes() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts).max_members(2).build().expect("valid");
    for account in &ACCOUNTS[..3] {
        fleet.credentials(&key(account)).expect("credentials");
    }
    assert_eq!(fleet.len(), 2);
    fleet
        .credentials(&key(ACCOUNTS[2]))
        .expect("kept: no new call");
    assert_eq!(sts.assume_role_calls(), 3);
    fleet.credentials(&key(ACCOUNTS[0])).expect("rebuilt");
    assert_eq!(
        sts.assume_role_calls(),
        4,
        "the first member went, and came back"
    );
    let refused = SessionFleet::builder().max_members(0).build();
    let error = refused.map(drop).expect_err("no room for any member");
    assert_eq!(error.field(), "max_members");
}

/// Static stability reaches the members: with STS down after expiry, a
/// member set to serve expired credentials serves its last one; by default
/// the caller gets the error.
#[test]
fn members_serve_an_expired_credential_only_when_set_to() {
    for serve_expired in [true, false] {
        let sts = short_lived_sts();
        let fleet = fleet(&sts)
            .max_attempts(1)
            .serve_expired_on_failure(serve_expired)
            .build()
            .expect("valid");
        let first = fleet.credentials(&key(ACCOUNTS[0])).expect("credentials");
        sts.inject(Fault::Unavailable, 100);
        std::thread::sleep(PAST_EXPIRY);
        let after_expiry = fleet.credentials(&key(ACCOUNTS[0]));
        assert_static_stability(serve_expired, &first, after_expiry);
    }
}

#[test]
fn idle_members_are_dropped_and_rebuilt_on_next_use() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts)
        .idle_timeout(Duration::from_secs(1))
        .build()
        .expect("valid");
    let session = fleet.session(&key(ACCOUNTS[0])).expect("a session");
    fleet.credentials(&key(ACCOUNTS[1])).expect("credentials");
    assert_eq!(fleet.evict_idle(), 0, "both were just used");
    std::thread::sleep(Duration::from_millis(2100));
    fleet.credentials(&key(ACCOUNTS[1])).expect("credentials");
    assert_eq!(
        fleet.len(),
        1,
        "the idle member went while the fleet was used"
    );
    // A clone held outside the fleet keeps working.
    session.credentials().expect("credentials");
    fleet.credentials(&key(ACCOUNTS[0])).expect("credentials");
    assert_eq!(sts.assume_role_calls(), 3, "rebuilt on its next use");
}

#[test]
fn eager_members_are_refused() {
    let error = SessionFleet::builder()
        .defer_refresh(false)
        .build()
        .expect_err("refused");
    assert!(error.to_string().contains("defer_refresh"), "{error}");
    let error = SessionFleet::builder()
        .max_concurrent_refreshes(0)
        .build()
        .expect_err("refused");
    assert!(
        error.to_string().contains("max_concurrent_refreshes"),
        "{error}"
    );
}
