//! Every fault of the loopback STS and IoT credential provider against
//! the async session: retried to success, or a typed error within the
//! deadline; the cached credential keeps being served in the advisory
//! window; no task outlives its session. One test, so the runtime's task
//! count is this test's alone.

use std::time::Duration;

use refresh_session_tests::faults::{
    Fault, MAX_ATTEMPTS, Protocol, SLOW, give_up_within, is_expected,
};
use refresh_session_tests::faulty_peer::{FaultyPeer, Method};
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{Builder, RefreshableSession};
use time::OffsetDateTime;
use tokio::time::{Instant, sleep};

fn session(peer: &FaultyPeer) -> Builder {
    let builder = match peer.method() {
        Method::Sts(params) => RefreshableSession::sts(params),
        Method::Iot(params) => RefreshableSession::iot(params),
    };
    peer.configure(builder)
}

async fn once(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(3600));
    peer.inject(fault, 1);
    let session = session(&peer).build().await.expect("valid");
    let result = session.credentials().await;
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

async fn always(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(3600));
    peer.inject(fault, 100);
    let session = session(&peer).build().await.expect("valid");
    let started = Instant::now();
    let error = session
        .credentials()
        .await
        .expect_err("every attempt fails");
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

async fn advisory(protocol: Protocol, fault: Fault) {
    let peer = FaultyPeer::start(protocol, Duration::from_secs(6));
    let session = session(&peer)
        .advisory_timeout(Duration::from_secs(3))
        .mandatory_timeout(Duration::from_millis(500))
        .build()
        .await
        .expect("valid");
    let first = session.credentials().await.expect("first fetch");
    peer.inject(fault, 100);
    let advisory_at = first.expiration().expect("expires") - Duration::from_millis(2900);
    let now = OffsetDateTime::now_utc();
    if advisory_at > now {
        sleep((advisory_at - now).unsigned_abs()).await;
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(
            session.credentials().await.expect("cached"),
            first,
            "{protocol:?} {fault:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_retried_or_a_typed_error_and_nothing_leaks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let runs: Vec<_> = [Protocol::Sts, Protocol::Iot]
        .into_iter()
        .flat_map(|protocol| Fault::all(SLOW).map(move |fault| (protocol, fault)))
        .flat_map(|(protocol, fault)| {
            [
                tokio::spawn(once(protocol, fault)),
                tokio::spawn(always(protocol, fault)),
                tokio::spawn(advisory(protocol, fault)),
            ]
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        if let Err(error) = run.await {
            failures.push(error.to_string());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} tasks outlived their sessions",
            metrics.num_alive_tasks()
        );
        sleep(Duration::from_millis(20)).await;
    }
}
