//! Properties of the engine over arbitrary interleavings of callers,
//! answers, failures and clock steps on a simulated clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use refresh_session_core::engine::{Access, FetchId};
use refresh_session_core::harness::{Reply, Sim, Work};
use refresh_session_core::policy::RefreshPolicy;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Error, SessionConfig, SessionOptions};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone)]
enum Op {
    Call,
    Advance(Duration),
    Answer(Reply),
    Timer,
}

#[derive(Debug, Clone)]
struct Setup {
    custom: bool,
    defer: bool,
    lifetime: Duration,
    advisory: Duration,
    mandatory: Duration,
    seed: u64,
    /// AWS's clock minus ours, and whether STS checks signing times.
    server_offset: time::Duration,
    checks_signing_time: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    let lifetime = prop_oneof![
        Just(Duration::from_secs(4)),
        Just(Duration::from_secs(900)),
        Just(Duration::from_secs(3600)),
        Just(Duration::from_secs(43_200)),
    ];
    let skew = prop_oneof![
        3 => Just(0i64),
        1 => Just(-1200i64),
        1 => Just(1200i64),
        1 => -3600i64..3600,
    ];
    let windows = (0u64..=1800, 0u64..=100);
    (
        (any::<bool>(), any::<bool>(), lifetime, windows),
        (any::<u64>(), skew, any::<bool>()),
    )
        .prop_map(
            |((custom, defer, lifetime, (advisory, mandatory_pct)), (seed, skew, checks))| Setup {
                custom,
                defer,
                lifetime,
                advisory: Duration::from_secs(advisory),
                mandatory: Duration::from_secs(advisory * mandatory_pct / 100),
                seed,
                // Only STS answers carry AWS's time; a custom provider's
                // clock is ours.
                server_offset: time::Duration::seconds(if custom { 0 } else { skew }),
                checks_signing_time: checks,
            },
        )
}

fn config(setup: &Setup) -> SessionConfig {
    let config = if setup.custom {
        SessionConfig::custom()
    } else {
        SessionConfig::assume_role(AssumeRole::new("arn:aws:iam::123456789012:role/app"))
            .region("us-east-1")
            .source_credentials(Credentials::new("AKIDSOURCE", "s", None, None))
    };
    config
        .defer_refresh(setup.defer)
        .advisory_timeout(setup.advisory)
        .mandatory_timeout(setup.mandatory)
}

fn ops(lifetime: Duration) -> impl Strategy<Value = Vec<Op>> {
    let max_step = (lifetime.as_millis() as u64 / 3).max(1);
    let reply = prop_oneof![
        4 => Just(Reply::Credentials(lifetime)),
        1 => Just(Reply::Throttled),
        1 => Just(Reply::Denied),
        1 => Just(Reply::Unreachable),
    ];
    let op = prop_oneof![
        4 => Just(Op::Call),
        3 => (0..max_step).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        3 => reply.prop_map(Op::Answer),
        1 => Just(Op::Timer),
    ];
    prop::collection::vec(op, 1..200)
}

/// Every credential a caller got must be valid, on AWS's clock, at the
/// time it got it.
fn check_ready(sim: &Sim, credentials: &Credentials) -> Result<(), TestCaseError> {
    let expiration = credentials.expiration().expect("issued credentials expire");
    prop_assert!(
        expiration > sim.server_now(),
        "handed out {} expiring at {expiration} at {} (AWS time)",
        credentials.access_key_id(),
        sim.server_now()
    );
    Ok(())
}

/// How early a skew-corrected engine may act: its estimate of AWS's time is
/// never behind, but may be ahead by the `Date` header's resolution plus
/// the round trip of the answer it learned from.
fn slack(setup: &Setup, sim: &Sim) -> time::Duration {
    if setup.server_offset.is_zero() {
        time::Duration::ZERO
    } else {
        time::Duration::SECOND + sim.max_round_trip()
    }
}

fn new_sim(setup: &Setup) -> Sim {
    let mut sim = Sim::new(config(setup), START, setup.seed).expect("valid config");
    sim.set_server_clock(setup.server_offset, setup.checks_signing_time);
    sim
}

/// The cached credential's mandatory window starts here.
fn mandatory_at(sim: &Sim, policy: &RefreshPolicy) -> Option<(Arc<Credentials>, OffsetDateTime)> {
    let snapshot = sim.engine().snapshot()?;
    let credentials = snapshot.credentials().clone();
    let issued = sim
        .issued()
        .iter()
        .find(|i| i.access_key_id == credentials.access_key_id())
        .expect("the cache holds an issued credential");
    Some((
        credentials,
        policy.windows(issued.at, issued.expires).mandatory_at(),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn interleavings_keep_the_refresh_invariants((setup, ops) in setup().prop_flat_map(|s| {
        let lifetime = s.lifetime;
        (Just(s), ops(lifetime))
    })) {
        let policy = RefreshPolicy::new(Some(setup.advisory), Some(setup.mandatory)).expect("mandatory <= advisory");
        let mut sim = new_sim(&setup);
        let mut waiting: Vec<FetchId> = Vec::new();
        if !setup.defer {
            waiting.push(sim.prefetch());
        }
        for op in ops {
            match op {
                Op::Call => {
                    let cached = mandatory_at(&sim, &policy);
                    match sim.call() {
                        Access::Ready(credentials) => {
                            check_ready(&sim, &credentials)?;
                            if let Some((cached, _)) = &cached {
                                prop_assert_eq!(&credentials, cached, "served the cached credential");
                            }
                        }
                        Access::Pending(id) => {
                            // Advisory failures keep the cached credential:
                            // a caller waits only once the mandatory window
                            // has begun.
                            if let Some((_, mandatory_at)) = cached {
                                prop_assert!(sim.server_now() + slack(&setup, &sim) >= mandatory_at, "waited at {} before {mandatory_at} (AWS time)", sim.server_now());
                            }
                            waiting.push(id);
                        }
                        // Only while a failed refresh backs off with
                        // nothing it may serve.
                        Access::Failed(error) => prop_assert!(matches!(error, Error::BackingOff { .. }), "a first call fails only backing off: {error}"),
                    }
                }
                Op::Advance(by) => sim.advance(by),
                Op::Answer(reply) => { sim.answer(reply); }
                Op::Timer => { sim.step_to_timeout(setup.lifetime); }
            }
            // Single flight: all outstanding work belongs to one fetch.
            let fetches: HashSet<FetchId> = sim.pending_work().map(Work::fetch).collect();
            prop_assert!(fetches.len() <= 1, "fetches in flight: {fetches:?}");
            // Waiters see a credential valid now, or the error of their fetch.
            let mut still_waiting = Vec::new();
            for id in waiting.drain(..) {
                match sim.recall(id) {
                    Access::Ready(credentials) => check_ready(&sim, &credentials)?,
                    Access::Pending(next) => still_waiting.push(next),
                    Access::Failed(_) => {}
                }
            }
            waiting = still_waiting;
        }
    }

    #[test]
    fn steady_state_makes_at_most_one_upstream_call_per_half_lifetime(
        setup in setup(),
        gaps in prop::collection::vec(1u64..=250, 1..500),
    ) {
        let mut sim = new_sim(&setup);
        let reply = Reply::Credentials(setup.lifetime);
        if !setup.defer {
            sim.prefetch();
            sim.settle(reply, 8);
        }
        // Callers arrive at random intervals of up to a quarter lifetime
        // (looping over the gaps) for a simulated day, or 100 lifetimes if
        // that is shorter; STS answers at once, background refreshes too.
        let end = START + DAY.min(setup.lifetime * 100);
        for gap in gaps.iter().cycle() {
            if sim.now() >= end {
                break;
            }
            let next_caller = sim.now() + setup.lifetime.mul_f64(*gap as f64 / 1000.0);
            while sim.step_to_timeout((next_caller - sim.now()).unsigned_abs()) {
                sim.settle(reply, 8);
            }
            sim.advance((next_caller - sim.now()).unsigned_abs());
            match sim.call() {
                Access::Ready(credentials) => check_ready(&sim, &credentials)?,
                Access::Pending(id) => {
                    sim.settle(reply, 8);
                    prop_assert!(matches!(sim.recall(id), Access::Ready(_)));
                }
                Access::Failed(error) => prop_assert!(false, "{error}"),
            }
            sim.settle(reply, 8);
        }
        let elapsed = (sim.now() - START).unsigned_abs();
        let half_life = setup.lifetime.as_secs_f64() / 2.0;
        let bound = 1 + (elapsed.as_secs_f64() / half_life).floor() as u64;
        let early = half_life - slack(&setup, &sim).as_seconds_f64();
        let skewed_bound = 1 + (elapsed.as_secs_f64() / early).floor() as u64;
        // Successful calls: a request refused for a wrong clock and retried
        // at once is not steady state.
        let calls = sim.engine().metrics().refreshes;
        prop_assert!(calls <= skewed_bound, "{calls} refreshes in {elapsed:?}, bound {skewed_bound}");
        // And the callers kept it busy: not far below the bound either.
        prop_assert!(calls * 4 >= bound, "{calls} refreshes in {elapsed:?}, bound {bound}");
    }

    #[test]
    fn the_same_seed_and_inputs_give_the_same_decisions((setup, ops) in setup().prop_flat_map(|s| {
        let lifetime = s.lifetime;
        (Just(s), ops(lifetime))
    })) {
        let run = || {
            let mut sim = new_sim(&setup);
            if !setup.defer {
                sim.prefetch();
            }
            let mut trace = Vec::new();
            for op in &ops {
                match op {
                    Op::Call => trace.push(format!("{:?}", sim.call())),
                    Op::Advance(by) => sim.advance(*by),
                    Op::Answer(reply) => trace.push(sim.answer(*reply).to_string()),
                    Op::Timer => trace.push(sim.step_to_timeout(setup.lifetime).to_string()),
                }
                trace.push(format!("{} {:?}", sim.now(), sim.engine().poll_timeout()));
            }
            (trace, sim.engine().metrics())
        };
        prop_assert_eq!(run(), run());
    }
}
