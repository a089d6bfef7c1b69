//! Every loopback-STS fault against the async session: retried to success,
//! or a typed error within the deadline; the cached credential keeps being
//! served in the advisory window; no task outlives its session. One test,
//! so the runtime's task count is this test's alone.

use std::time::Duration;

use refresh_session_tests::faults::{
    MAX_ATTEMPTS, READ_TIMEOUT, RETRY_DEADLINE, SLOW, give_up_within, is_expected,
};
use refresh_session_tests::sts_server::{Fault, LoopbackSts, StsOptions};
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{Builder, RefreshableSession};
use time::OffsetDateTime;
use tokio::time::{Instant, sleep};

fn sts(lifetime: Duration) -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime,
        delay: Duration::ZERO,
    })
}

fn session(sts: &LoopbackSts) -> Builder {
    RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/faults"))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDFAULTS", "secret", None, None))
        .read_timeout(READ_TIMEOUT)
        .max_attempts(MAX_ATTEMPTS)
        .retry_deadline(RETRY_DEADLINE)
}

async fn once(fault: Fault) {
    let sts = sts(Duration::from_secs(3600));
    sts.inject(fault, 1);
    let session = session(&sts).build().await.expect("valid");
    let result = session.credentials().await;
    let calls = sts.requests().len();
    if fault.is_transient() {
        assert!(result.is_ok(), "{fault:?} once: {result:?}");
        assert_eq!(calls, 2, "{fault:?}: one retry");
    } else {
        let error = result.expect_err("a terminal fault fails the refresh");
        assert!(is_expected(fault, &error), "{fault:?}: {error}");
        assert_eq!(calls, 1, "{fault:?}: not retried");
    }
}

async fn always(fault: Fault) {
    let sts = sts(Duration::from_secs(3600));
    sts.inject(fault, 100);
    let session = session(&sts).build().await.expect("valid");
    let started = Instant::now();
    let error = session
        .credentials()
        .await
        .expect_err("every attempt fails");
    assert!(is_expected(fault, &error), "{fault:?}: {error}");
    assert!(
        started.elapsed() <= give_up_within(),
        "{fault:?}: gave up after {:?}",
        started.elapsed()
    );
    let calls = sts.requests().len();
    let most = if fault.is_transient() {
        MAX_ATTEMPTS as usize
    } else {
        1
    };
    assert!((1..=most).contains(&calls), "{fault:?}: {calls} calls");
}

async fn advisory(fault: Fault) {
    let sts = sts(Duration::from_secs(6));
    let session = session(&sts)
        .advisory_timeout(Duration::from_secs(3))
        .mandatory_timeout(Duration::from_millis(500))
        .build()
        .await
        .expect("valid");
    let first = session.credentials().await.expect("first fetch");
    sts.inject(fault, 100);
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
            "{fault:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_retried_or_a_typed_error_and_nothing_leaks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let runs: Vec<_> = Fault::all(SLOW)
        .into_iter()
        .flat_map(|fault| {
            [
                tokio::spawn(once(fault)),
                tokio::spawn(always(fault)),
                tokio::spawn(advisory(fault)),
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
