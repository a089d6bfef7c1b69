//! What a session does when refreshes fail, as the AWS SDKs do from 2026:
//! a failed refresh never takes away a valid credential, backoffs that keep
//! STS traffic bounded whatever the number of callers, typed errors once
//! nothing valid is left, and static stability on request. Examples first,
//! then the bound as a property over arbitrary callers, failures and clock
//! steps.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use refresh_session_core::engine::{Access, FetchId};
use refresh_session_core::harness::{Reply, Sim, Work};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Error, SessionConfig, SessionOptions};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sts() -> SessionConfig {
    SessionConfig::assume_role(AssumeRole::new("arn:aws:iam::123456789012:role/app"))
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "source-secret", None, None))
        .max_attempts(1)
}

/// A session holding a one-hour credential fetched at `START`.
fn warmed(config: SessionConfig) -> (Sim, std::sync::Arc<Credentials>) {
    let mut sim = Sim::new(config, START, 5).expect("valid");
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(sim.answer(Reply::Credentials(HOUR)));
    let Access::Ready(credentials) = sim.recall(fetch) else {
        panic!("fetched")
    };
    (sim, credentials)
}

#[test]
fn a_recoverable_failure_in_the_mandatory_window_hands_waiters_the_cached_credential() {
    let (mut sim, first) = warmed(sts());
    sim.advance(secs(3550));
    let Access::Pending(fetch) = sim.call() else {
        panic!("the mandatory window waits")
    };
    assert!(sim.answer(Reply::Throttled));
    assert!(matches!(sim.recall(fetch), Access::Ready(c) if c == first));
    // Backing off: callers get it at once, nobody asks STS.
    for _ in 0..100 {
        assert!(matches!(sim.call(), Access::Ready(c) if c == first));
    }
    assert_eq!(sim.pending(), 0);
}

#[test]
fn an_answer_that_has_already_expired_is_a_failed_refresh_and_the_cache_stays() {
    let (mut sim, first) = warmed(sts());
    sim.advance(secs(3550));
    let Access::Pending(fetch) = sim.call() else {
        panic!("the mandatory window waits")
    };
    assert!(sim.answer(Reply::Credentials(Duration::ZERO)));
    assert!(matches!(sim.recall(fetch), Access::Ready(c) if c == first));
}

#[test]
fn with_nothing_valid_left_callers_get_a_typed_error_naming_the_failure_and_the_next_attempt() {
    let (mut sim, _) = warmed(sts());
    sim.advance(HOUR);
    let Access::Pending(fetch) = sim.call() else {
        panic!("expired: a refresh")
    };
    assert!(sim.answer(Reply::Unreachable));
    assert!(matches!(
        sim.recall(fetch),
        Access::Failed(Error::Transport(_))
    ));
    for _ in 0..100 {
        match sim.call() {
            Access::Failed(Error::BackingOff { last, retry_at }) => {
                assert!(matches!(*last, Error::Transport(_)));
                assert!(retry_at > sim.now() && retry_at <= sim.now() + secs(60));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sim.pending(), 0, "no call to STS while backing off");
}

#[test]
fn static_stability_serves_the_expired_credential_when_a_refresh_after_expiry_fails() {
    let (mut sim, first) = warmed(sts().serve_expired_on_failure(true));
    sim.advance(HOUR);
    let Access::Pending(fetch) = sim.call() else {
        panic!("expired: a refresh")
    };
    assert!(sim.answer(Reply::Unreachable));
    assert!(matches!(sim.recall(fetch), Access::Ready(c) if c == first));
    assert!(matches!(sim.call(), Access::Ready(c) if c == first));
    // Rejected by a service as expired, it is not served again.
    assert!(sim.reject(first.access_key_id(), Rejection::Expired));
    assert!(!matches!(sim.call(), Access::Ready(_)));
}

#[test]
fn a_rejection_during_the_backoff_does_not_ask_the_source() {
    let (mut sim, first) = warmed(sts());
    sim.advance(secs(2700));
    assert!(matches!(sim.call(), Access::Ready(_)));
    assert!(sim.answer(Reply::Throttled));
    assert!(sim.reject(first.access_key_id(), Rejection::Expired));
    assert_eq!(sim.pending(), 0);
    assert!(matches!(
        sim.call(),
        Access::Failed(Error::BackingOff { .. })
    ));
}

#[test]
fn a_failure_trying_again_will_not_fix_reaches_the_waiters_then_waits_five_seconds() {
    let (mut sim, _) = warmed(sts());
    sim.advance(HOUR);
    let Access::Pending(fetch) = sim.call() else {
        panic!("expired: a refresh")
    };
    assert!(sim.answer(Reply::Denied));
    assert!(matches!(
        sim.recall(fetch),
        Access::Failed(Error::Service(_))
    ));
    sim.advance(secs(4));
    assert!(matches!(
        sim.call(),
        Access::Failed(Error::BackingOff { .. })
    ));
    assert_eq!(sim.pending(), 0);
}

/// Whether trying again may fix the failure.
fn recoverable(failure: Reply) -> bool {
    matches!(
        failure,
        Reply::Throttled | Reply::Unreachable | Reply::Credentials(_)
    )
}

/// How the upstream fails, for good.
fn failure() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Throttled),
        Just(Reply::Denied),
        Just(Reply::Unreachable),
        Just(Reply::SignatureMismatch),
        Just(Reply::Credentials(Duration::ZERO)),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    custom: bool,
    defer: bool,
    lifetime: Duration,
    failure: Reply,
    seed: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(900u64), Just(3600), Just(6 * 3600), 120u64..7200],
        failure(),
        any::<u64>(),
    )
        .prop_map(|(custom, defer, lifetime, failure, seed)| Setup {
            custom,
            defer,
            lifetime: secs(lifetime),
            failure,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Point 7 of the 2026 behaviour: under persistent failure of any kind,
    /// whatever the callers, at most one fetch in flight; while a valid
    /// credential is served, at most one attempt per five minutes (and a
    /// dozen more in a mandatory window after failures trying again will
    /// not fix); with none left, the first minute's ramp and then at most
    /// one a minute; never an expired credential handed out.
    #[test]
    fn upstream_attempts_are_bounded_under_persistent_failure(
        setup in setup(),
        callers in prop::collection::vec((0u64..=30_000, 0usize..=20), 50..400),
    ) {
        let config = match setup.custom {
            true => SessionConfig::custom(),
            false => sts(),
        };
        let mut sim = Sim::new(config.defer_refresh(setup.defer), START, setup.seed).expect("valid");
        if setup.defer {
            let Access::Pending(fetch) = sim.call() else { panic!("nothing cached") };
            sim.answer(Reply::Credentials(setup.lifetime));
            prop_assert!(matches!(sim.recall(fetch), Access::Ready(_)));
        } else {
            let fetch = sim.prefetch();
            sim.answer(Reply::Credentials(setup.lifetime));
            prop_assert!(matches!(sim.recall(fetch), Access::Ready(_)));
        }
        let expires = START + setup.lifetime;
        let mut seen: HashSet<FetchId> = HashSet::new();
        let (mut while_valid, mut after_expiry) = (0u64, 0u64);
        // Callers arrive in bursts (up to 20 at once) at gaps of up to 30 s
        // for three simulated hours, cycling; every attempt fails at once.
        let end = START + 3 * HOUR;
        for (gap_ms, burst) in callers.iter().cycle() {
            if sim.now() >= end {
                break;
            }
            sim.advance(Duration::from_millis(*gap_ms));
            for _ in 0..*burst {
                match sim.call() {
                    Access::Ready(credentials) => {
                        let expiration = credentials.expiration().expect("expires");
                        prop_assert!(expiration > sim.server_now(), "an expired credential was handed out");
                    }
                    // A recoverable failure never takes a valid credential
                    // away (point 2).
                    Access::Failed(error) => prop_assert!(
                        !(recoverable(setup.failure) && sim.now() < expires),
                        "{error} while the credential was valid"
                    ),
                    Access::Pending(_) => {}
                }
            }
            let fetches: HashSet<FetchId> = sim.pending_work().map(Work::fetch).collect();
            prop_assert!(fetches.len() <= 1, "fetches in flight: {fetches:?}");
            for fetch in fetches {
                if seen.insert(fetch) {
                    match sim.now() < expires {
                        true => while_valid += 1,
                        false => after_expiry += 1,
                    }
                }
            }
            sim.settle(setup.failure, 16);
        }
        let valid_span = (expires - START).unsigned_abs().saturating_sub(setup.lifetime / 2);
        let valid_bound = 2 + valid_span.as_secs() / 300 + 13;
        prop_assert!(while_valid <= valid_bound, "{while_valid} attempts while valid, bound {valid_bound}");
        let expired_span = (end - expires).unsigned_abs().as_secs();
        let expired_bound = 10 + expired_span / 60;
        prop_assert!(after_expiry <= expired_bound, "{after_expiry} attempts after expiry, bound {expired_bound}");
        let upstream = sim.engine().metrics().upstream_calls;
        prop_assert!(upstream <= 1 + (while_valid + after_expiry) * 3, "{upstream} upstream calls");
    }
}
