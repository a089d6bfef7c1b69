//! Every fault of the loopback STS and IoT credential provider against
//! the blocking session: retried to success, or a typed error within the
//! deadline; the cached credential keeps being served in the advisory
//! window; no thread outlives its session. One test, so the thread count is
//! this test's alone.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, RefreshableSession};
use refresh_session_tests::faults::{
    Fault, MAX_ATTEMPTS, Protocol, SLOW, give_up_within, is_expected,
};
use refresh_session_tests::faulty_peer::{FaultyPeer, Method};
use time::OffsetDateTime;

fn session(peer: &FaultyPeer) -> Builder {
    let builder = match peer.method() {
        Method::Sts(params) => RefreshableSession::sts(params),
        Method::Iot(params) => RefreshableSession::iot(params),
    };
    peer.configure(builder)
}

fn refresh_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("Linux /proc")
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "refresh-session")
        .count()
}

/// Once: retried to success (transient) or a typed error after one call.
fn once(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(3600));
    peer.inject(fault, 1);
    let session = session(&peer).build().expect("valid");
    let result = session.credentials();
    let calls = peer.calls();
    if fault.is_transient() {
        assert!(result.is_ok(), "{protocol:?} {fault:?} once: {result:?}");
        assert_eq!(calls, 2, "{protocol:?} {fault:?}: one retry");
    } else {
        let error = result.expect_err("a terminal fault fails the refresh");
        assert!(
            is_expected(fault, protocol, &error),
            "{protocol:?} {fault:?}: {error}"
        );
        assert_eq!(calls, 1, "{protocol:?} {fault:?}: not retried");
    }
}

/// Every time: a typed error after the last attempt, within the deadline.
fn always(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(3600));
    peer.inject(fault, 100);
    let session = session(&peer).build().expect("valid");
    let started = Instant::now();
    let error = session.credentials().expect_err("every attempt fails");
    assert!(
        is_expected(fault, protocol, &error),
        "{protocol:?} {fault:?}: {error}"
    );
    assert!(
        started.elapsed() <= give_up_within(),
        "{protocol:?} {fault:?}: gave up after {:?}",
        started.elapsed()
    );
    let calls = peer.calls();
    let most = if fault.is_transient() {
        MAX_ATTEMPTS as usize
    } else {
        1
    };
    assert!(
        (1..=most).contains(&calls),
        "{protocol:?} {fault:?}: {calls} calls"
    );
}

/// In the advisory window: the cached credential, whatever STS does.
fn advisory(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(6));
    let session = session(&peer)
        .advisory_timeout(Duration::from_secs(3))
        .mandatory_timeout(Duration::from_millis(500))
        .build()
        .expect("valid");
    let first = session.credentials().expect("first fetch");
    peer.inject(fault, 100);
    let advisory_at = first.expiration().expect("expires") - Duration::from_millis(2900);
    let now = OffsetDateTime::now_utc();
    if advisory_at > now {
        thread::sleep((advisory_at - now).unsigned_abs());
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(
            session.credentials().expect("cached"),
            first,
            "{protocol:?} {fault:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_fault_is_retried_or_a_typed_error_and_nothing_leaks() {
    let runs: Vec<_> = [Protocol::Sts, Protocol::Iot]
        .into_iter()
        .flat_map(|protocol| Fault::all(SLOW).map(move |fault| (protocol, fault)))
        .flat_map(|(protocol, fault)| {
            [
                thread::spawn(move || once(protocol, fault)),
                thread::spawn(move || always(protocol, fault)),
                thread::spawn(move || advisory(protocol, fault)),
            ]
        })
        .collect();
    let failures: Vec<String> = runs
        .into_iter()
        .filter_map(|run| run.join().err())
        .map(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while refresh_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} refresh threads outlived their sessions",
            refresh_threads()
        );
        thread::sleep(Duration::from_millis(20));
    }
}
