//! Retries within a refresh and clock-skew correction, over the harness's
//! virtual clock.

use std::time::Duration;

use refresh_session_core::engine::Access;
use refresh_session_core::error::ErrorCode;
use refresh_session_core::harness::{Reply, Sim, Work};
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Error, SessionConfig, SessionOptions};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);

fn sts() -> SessionConfig {
    SessionConfig::assume_role(AssumeRole::new("arn:aws:iam::123456789012:role/app"))
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "source-secret", None, None))
}

fn sim(config: SessionConfig) -> Sim {
    Sim::new(config, START, 11).expect("valid config")
}

/// Answers the pending request with `reply`, then steps to the retry timer
/// if one is set (at most `limit` away); returns whether a retry went out.
fn fail_and_step(sim: &mut Sim, reply: Reply, limit: Duration) -> bool {
    assert!(sim.answer(reply));
    sim.step_to_timeout(limit) && sim.pending() == 1
}

#[test]
fn a_throttled_call_is_retried_within_the_refresh() {
    let mut sim = sim(sts());
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    let before = sim.now();
    assert!(fail_and_step(
        &mut sim,
        Reply::Throttled,
        Duration::from_secs(1)
    ));
    assert!(
        sim.now() - before <= time::Duration::seconds(1),
        "first backoff at most 1 s"
    );
    assert!(sim.answer(Reply::Credentials(HOUR)));
    assert!(matches!(sim.recall(fetch), Access::Ready(_)));
    let metrics = sim.engine().metrics();
    assert_eq!(
        (
            metrics.upstream_calls,
            metrics.refreshes,
            metrics.failed_refreshes
        ),
        (2, 1, 0)
    );
}

#[test]
fn transport_failures_are_retried_up_to_the_attempt_limit() {
    let mut sim = sim(sts().max_attempts(3));
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(fail_and_step(
        &mut sim,
        Reply::Unreachable,
        Duration::from_secs(30)
    ));
    assert!(fail_and_step(
        &mut sim,
        Reply::Unreachable,
        Duration::from_secs(30)
    ));
    assert!(sim.answer(Reply::Unreachable));
    assert_eq!(sim.pending(), 0);
    assert_eq!(sim.engine().poll_timeout(), None, "no more retries");
    match sim.recall(fetch) {
        Access::Failed(Error::Transport(_)) => {}
        other => panic!("{other:?}"),
    }
    let metrics = sim.engine().metrics();
    assert_eq!((metrics.upstream_calls, metrics.failed_refreshes), (3, 1));
}

#[test]
fn retries_stop_at_the_deadline() {
    let mut sim = sim(sts()
        .max_attempts(100)
        .retry_deadline(Duration::from_secs(10)));
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    let started = sim.now();
    let mut attempts = 1;
    while fail_and_step(&mut sim, Reply::Throttled, Duration::from_secs(60)) {
        attempts += 1;
        assert!(attempts < 100, "the deadline never stopped the retries");
    }
    assert!(
        sim.now() - started <= time::Duration::seconds(10),
        "retried past the deadline"
    );
    assert!(
        attempts > 2,
        "a 10 s deadline allows several 1-2-4 s backoffs: {attempts}"
    );
    assert!(matches!(
        sim.recall(fetch),
        Access::Failed(Error::Service(_))
    ));
}

#[test]
fn terminal_errors_are_not_retried() {
    let mut sim = sim(sts());
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(sim.answer(Reply::Denied));
    assert_eq!(sim.engine().poll_timeout(), None);
    match sim.recall(fetch) {
        Access::Failed(Error::Service(e)) => assert_eq!(e.code(), &ErrorCode::AccessDenied),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.engine().metrics().upstream_calls, 1);
}

#[test]
fn the_advisory_window_serves_the_cache_while_retries_run() {
    let mut sim = sim(sts());
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    sim.answer(Reply::Credentials(HOUR));
    let Access::Ready(first) = sim.recall(fetch) else {
        panic!("fetched")
    };
    sim.advance(Duration::from_secs(2700));
    for _ in 0..3 {
        let Access::Ready(served) = sim.call() else {
            panic!("advisory: served at once")
        };
        assert_eq!(served, first);
        sim.answer(Reply::Unreachable);
        sim.step_to_timeout(Duration::from_secs(30));
    }
}

#[test]
fn a_clock_twenty_minutes_fast_is_corrected_from_the_date_header() {
    let mut sim = sim(sts());
    // AWS's clock is 20 minutes behind ours, and it checks signing times.
    sim.set_server_clock(time::Duration::minutes(-20), true);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    // The first request is signed with our wrong time and refused; the
    // answer's Date header teaches the engine the skew, and it retries at
    // once with a corrected signature.
    assert!(sim.answer(Reply::Credentials(HOUR)));
    assert_eq!(sim.pending(), 1, "retried at once");
    match sim.pending_work().next() {
        Some(Work::Transmit(_, request)) => {
            let signed = refresh_session_core::harness::signing_time(request).expect("x-amz-date");
            let aws_now = sim.now() - time::Duration::minutes(20);
            assert!(
                (signed - aws_now).abs() < time::Duration::seconds(5),
                "signed at {signed}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.answer(Reply::Credentials(HOUR)));
    let Access::Ready(credentials) = sim.recall(fetch) else {
        panic!("the corrected request succeeded")
    };
    // The Date header says 23:40:00 and was sent at once: AWS's time is
    // 23:40:00 to 23:40:01, and the estimate is the late end.
    assert_eq!(sim.engine().clock_skew(), time::Duration::seconds(-1199));
    // Expiry is judged on AWS's clock: by ours the credential "expires" at
    // 00:40, but it is good for an hour (one second less, by the estimate).
    sim.advance(Duration::from_secs(2698));
    assert!(matches!(sim.call(), Access::Ready(c) if c == credentials));
    assert_eq!(sim.pending(), 0);
    // The lock-free snapshot's window is on the local clock.
    let snapshot = sim.engine().snapshot().expect("cached");
    let local_fresh_until = std::time::SystemTime::from(START + Duration::from_secs(2699));
    assert!(
        snapshot
            .fresh_at(local_fresh_until - Duration::from_secs(1))
            .is_some()
    );
    assert!(snapshot.fresh_at(local_fresh_until).is_none());
}

#[test]
fn a_clock_twenty_minutes_slow_does_not_throw_away_fresh_credentials() {
    // An STS that does not check signing times (as moto) still sends Date.
    // Our clock is 20 minutes behind, and the role's session is 15
    // minutes: uncorrected, we would see it expire 35 minutes from now;
    // a clock 20 minutes fast would see it already expired.
    for offset in [time::Duration::minutes(20), time::Duration::minutes(-20)] {
        let mut sim = sim(sts());
        sim.set_server_clock(offset, false);
        let Access::Pending(fetch) = sim.call() else {
            panic!("nothing cached")
        };
        sim.answer(Reply::Credentials(Duration::from_secs(900)));
        let Access::Ready(credentials) = sim.recall(fetch) else {
            panic!("{offset}: the credential is valid on AWS's clock")
        };
        // The estimate is the late end of the Date header's second.
        assert_eq!(sim.engine().clock_skew(), offset + time::Duration::SECOND);
        // Refreshed five minutes before expiry on AWS's clock (by the
        // estimate), not minutes before or after.
        sim.advance(Duration::from_secs(598));
        assert!(matches!(sim.call(), Access::Ready(c) if c == credentials));
        assert_eq!(sim.pending(), 0, "{offset}: still fresh");
        sim.advance(Duration::from_secs(2));
        assert!(matches!(sim.call(), Access::Ready(_)));
        assert_eq!(sim.pending(), 1, "{offset}: advisory");
    }
}

#[test]
fn a_wrong_secret_is_not_mistaken_for_a_wrong_clock() {
    // SignatureDoesNotMatch from a server whose clock agrees with ours:
    // nothing to correct, so the error is final after one call.
    let mut sim = sim(sts());
    sim.set_server_clock(time::Duration::ZERO, true);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    sim.answer(Reply::SignatureMismatch);
    assert_eq!(sim.pending(), 0);
    assert_eq!(sim.engine().poll_timeout(), None);
    match sim.recall(fetch) {
        Access::Failed(Error::Service(e)) => {
            assert_eq!(e.code(), &ErrorCode::SignatureDoesNotMatch)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.engine().metrics().upstream_calls, 1);
}

#[test]
fn a_clock_twenty_minutes_slow_is_corrected_before_the_retry_deadline() {
    // Regression: the retry deadline once compared the first attempt's time
    // before the correction with AWS's time after it, saw twenty minutes
    // "pass", and gave up instead of retrying.
    let mut sim = sim(sts());
    sim.set_server_clock(time::Duration::minutes(20), true);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(sim.answer(Reply::Credentials(HOUR)));
    assert_eq!(sim.pending(), 1, "retried at once, correctly dated");
    assert!(sim.answer(Reply::Credentials(HOUR)));
    assert!(matches!(sim.recall(fetch), Access::Ready(_)));
    assert_eq!(sim.engine().clock_skew().whole_minutes(), 20);
}

#[test]
fn an_answer_dated_at_the_end_of_time_fails_the_refresh_and_moves_no_clock() {
    for offset in [time::Duration::MAX, time::Duration::days(-2)] {
        let mut sim = sim(sts());
        sim.set_server_clock(offset, false);
        let Access::Pending(fetch) = sim.call() else {
            panic!("nothing cached")
        };
        assert!(sim.answer(Reply::Credentials(HOUR)));
        match sim.recall(fetch) {
            Access::Failed(Error::InvalidResponse { problem, .. }) => {
                assert!(problem.contains("Date header"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.engine().clock_skew(), time::Duration::ZERO);
        assert!(
            sim.engine().poll_timeout().is_none(),
            "nothing left in flight"
        );
    }
}

#[test]
fn credentials_that_expire_at_the_end_of_time_are_served_without_overflow() {
    let mut sim = sim(sts()
        .advisory_timeout(Duration::MAX)
        .mandatory_timeout(Duration::MAX));
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(sim.answer(Reply::Credentials(Duration::MAX)));
    let Access::Ready(credentials) = sim.recall(fetch) else {
        panic!("served")
    };
    assert!(credentials.expiration().expect("expires") > START);
    sim.advance(Duration::from_secs(u64::MAX));
    assert!(matches!(sim.call(), Access::Pending(_) | Access::Failed(_)));
}
