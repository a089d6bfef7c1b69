//! The async session against the loopback STS, which issues credentials
//! that live seconds: ten thousand tasks across several expiries, and a
//! refresh held in flight while advisory callers keep going.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{Builder, RefreshableSession};
use time::OffsetDateTime;
use tokio::time::{Instant, sleep};

const ROLE: &str = "arn:aws:iam::123456789012:role/loopback";
const TASKS: usize = 10_000;
const LIFETIME: Duration = Duration::from_secs(4);
const ADVISORY: Duration = Duration::from_millis(1500);
const MANDATORY: Duration = Duration::from_millis(500);
const TEST_LIMIT: Duration = Duration::from_secs(60);

fn session(sts: &LoopbackSts, name: &str) -> Builder {
    RefreshableSession::sts(AssumeRole::new(ROLE).role_session_name(name))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new(
            "AKIDLOOPBACK",
            "loopback-secret",
            None,
            None,
        ))
        .advisory_timeout(ADVISORY)
        .mandatory_timeout(MANDATORY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_across_three_expiries() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let session = session(&sts, "ten-thousand").build().await.expect("valid");
    let done = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (session, done) = (session.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = HashSet::new();
                while !done.load(Ordering::Relaxed) {
                    let asked_at = OffsetDateTime::now_utc();
                    let credentials = session.credentials().await.expect("credentials");
                    let expiration = credentials.expiration().expect("temporary");
                    assert!(
                        expiration > asked_at,
                        "{} expired at {expiration}, asked at {asked_at}",
                        credentials.access_key_id()
                    );
                    seen.insert(credentials.access_key_id().to_owned());
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();
    // Four credentials: the first fetch and three refreshes, one per expiry.
    let deadline = Instant::now() + TEST_LIMIT;
    while session.metrics().refreshes < 4 {
        assert!(
            Instant::now() < deadline,
            "the refreshes did not happen within {TEST_LIMIT:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut seen = HashSet::new();
    for task in tasks {
        seen.extend(task.await.expect("task"));
    }
    let issued = sts.issued();
    assert!(issued.len() >= 4);
    sts.assert_one_call_per_lifetime(LIFETIME - ADVISORY);
    let keys: HashSet<String> = issued.iter().map(|c| c.access_key_id.clone()).collect();
    assert!(seen.is_subset(&keys));
    assert!(
        keys.len() - seen.len() <= 1,
        "unused credentials: {:?}",
        keys.difference(&seen)
    );
    let metrics = session.metrics();
    assert_eq!(metrics.refreshes as usize, issued.len());
    assert_eq!(metrics.failed_refreshes, 0);
    assert!(
        metrics.waits <= TASKS as u64,
        "only the first fetch made tasks wait: {metrics:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_tasks_are_not_delayed_by_a_slow_sts() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let session = session(&sts, "slow").build().await.expect("valid");
    let first = session.credentials().await.expect("first fetch");
    let advisory_at = first.expiration().expect("expires") - ADVISORY;
    let now = OffsetDateTime::now_utc();
    if advisory_at > now {
        sleep((advisory_at - now).unsigned_abs()).await;
    }
    sts.hold();
    assert_eq!(session.credentials().await.expect("cached"), first);
    let deadline = Instant::now() + TEST_LIMIT;
    while sts.requests().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the refresh request never arrived"
        );
        sleep(Duration::from_millis(5)).await;
    }
    // STS holds the refresh. Tasks asking now all answer on the channel
    // before STS is released.
    let (answers, mut received) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..1000 {
        let (session, answers) = (session.clone(), answers.clone());
        tokio::spawn(async move {
            let _ = answers.send(session.credentials().await);
        });
    }
    drop(answers);
    let mut count = 0;
    while let Some(answer) = received.recv().await {
        assert_eq!(answer.expect("credentials"), first);
        count += 1;
    }
    assert_eq!(count, 1000);
    assert_eq!(
        session.metrics().refreshes,
        1,
        "STS is still holding the refresh"
    );
    assert_eq!(session.metrics().waits, 1);
    sts.release();
    while session.metrics().refreshes < 2 {
        assert!(Instant::now() < deadline, "the refresh never finished");
        sleep(Duration::from_millis(5)).await;
    }
    assert_ne!(session.credentials().await.expect("fresh"), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_sessions_never_make_tasks_wait() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::from_millis(200),
    });
    let session = session(&sts, "eager")
        .defer_refresh(false)
        .build()
        .await
        .expect("first fetch");
    let done = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (session, done) = (session.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    session.credentials().await.expect("credentials");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + TEST_LIMIT;
    while session.metrics().refreshes < 3 {
        assert!(Instant::now() < deadline, "no background refreshes");
        sleep(Duration::from_millis(20)).await;
    }
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("task");
    }
    sts.assert_one_call_per_lifetime(LIFETIME / 2);
    assert_eq!(session.metrics().waits, 0);
}
