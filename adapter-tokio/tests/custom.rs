//! The async session's semantics on tokio, with custom providers that live
//! seconds, fail on cue, or take their time.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use refresh_session_tokio::error::ProviderError;
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{BoxError, Builder, Error};
use time::OffsetDateTime;
use tokio::time::{Instant, sleep, timeout};

/// A provider counting its calls, failing while `failing(n)` says so,
/// taking `delay`, and issuing credentials that live `lifetime`.
fn provider(
    lifetime: Duration,
    delay: Duration,
    calls: Arc<AtomicUsize>,
    failing: impl Fn(usize) -> bool + Send + Sync + Clone + 'static,
) -> Builder {
    RefreshableSession::custom(move || {
        let (calls, failing) = (calls.clone(), failing.clone());
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            sleep(delay).await;
            if failing(n) {
                return Err(BoxError::from(format!("broker unavailable (call {n})")));
            }
            Ok(CustomCredentials::new()
                .access_key_id(format!("AKID{n}"))
                .secret_access_key("secret")
                .expiration(OffsetDateTime::now_utc() + lifetime))
        }
    })
}

/// Polls `future` once: `Some` if it completed without waiting.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

async fn sleep_until(at: OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    if at > now {
        sleep((at - now).unsigned_abs()).await;
    }
}

#[tokio::test]
async fn fresh_and_advisory_calls_complete_on_the_first_poll() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(
        Duration::from_secs(6),
        Duration::from_millis(300),
        calls.clone(),
        |_| false,
    )
    .advisory_timeout(Duration::from_secs(3))
    .mandatory_timeout(Duration::from_millis(500))
    .build()
    .await
    .expect("valid");
    let first = session.credentials().await.expect("first fetch");
    let fresh = poll_once(session.credentials()).expect("the fresh path does not wait");
    assert_eq!(fresh.expect("credentials"), first);

    sleep_until(first.expiration().expect("expires") - Duration::from_millis(2900)).await;
    // Advisory: completes at once with the cached credential, and the
    // (300 ms) refresh starts in the background.
    let advisory = poll_once(session.credentials()).expect("the advisory path does not wait");
    assert_eq!(advisory.expect("credentials"), first);
    assert_eq!(session.metrics().upstream_calls, 2, "the refresh started");
    let during = poll_once(session.credentials()).expect("still no waiting");
    assert_eq!(during.expect("credentials"), first);
    // The refresh lands without anyone waiting for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.metrics().refreshes < 2 {
        assert!(Instant::now() < deadline, "the refresh never finished");
        sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(session.credentials().await.expect("credentials"), first);
    assert_eq!(
        session.metrics().waits,
        1,
        "only the very first call waited"
    );
}

#[tokio::test]
async fn a_cancelled_caller_does_not_cancel_the_refresh() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(
        Duration::from_secs(3600),
        Duration::from_millis(500),
        calls.clone(),
        |_| false,
    )
    .build()
    .await
    .expect("valid");
    let impatient = timeout(Duration::from_millis(50), session.credentials()).await;
    assert!(impatient.is_err(), "the caller gave up");
    let patient = session.credentials().await.expect("the refresh went on");
    assert_eq!(patient.access_key_id(), "AKID0");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one provider call for both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_at_expiry_cause_one_provider_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(
        Duration::from_secs(3600),
        Duration::from_millis(200),
        calls.clone(),
        |_| false,
    )
    .build()
    .await
    .expect("valid");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move {
                session
                    .credentials()
                    .await
                    .map(|c| c.access_key_id().to_owned())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("credentials"), "AKID0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_advisory_failure_keeps_serving_the_cached_credential() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(Duration::from_secs(6), Duration::ZERO, calls.clone(), |n| {
        n > 0
    })
    .advisory_timeout(Duration::from_secs(3))
    .mandatory_timeout(Duration::from_millis(500))
    .build()
    .await
    .expect("valid");
    let first = session.credentials().await.expect("first fetch");
    sleep_until(first.expiration().expect("expires") - Duration::from_millis(2900)).await;
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(session.credentials().await.expect("cached"), first);
        sleep(Duration::from_millis(5)).await;
    }
    let metrics = session.metrics();
    assert!(metrics.failed_refreshes >= 1, "{metrics:?}");
    assert!(
        metrics.failed_refreshes <= 8,
        "backoff keeps attempts few: {metrics:?}"
    );
    assert_eq!(metrics.waits, 1);
}

/// A failed refresh never takes away a credential that is still valid: the
/// tasks waiting in the mandatory window get it; once it has expired, they
/// get the error.
#[tokio::test]
async fn a_mandatory_failure_hands_every_waiting_task_the_valid_credential_then_the_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(
        Duration::from_secs(2),
        Duration::from_millis(100),
        calls.clone(),
        |n| n > 0,
    )
    .advisory_timeout(Duration::from_millis(500))
    .mandatory_timeout(Duration::from_millis(400))
    .build()
    .await
    .expect("valid");
    let first = session.credentials().await.expect("first fetch");
    sleep_until(first.expiration().expect("expires") - Duration::from_millis(300)).await;
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.credentials().await })
        })
        .collect();
    for waiter in waiters {
        assert_eq!(waiter.await.expect("task").expect("still valid"), first);
    }
    sleep_until(first.expiration().expect("expires")).await;
    match session.credentials().await {
        Err(Error::BackingOff { last, .. }) => match &*last {
            Error::Provider(ProviderError::Failed(error)) => {
                assert!(
                    error.to_string().starts_with("broker unavailable"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        },
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert!(
                error.to_string().starts_with("broker unavailable"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn eager_sessions_never_wait_and_their_task_ends_with_the_last_handle() {
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0);
    let calls = Arc::new(AtomicUsize::new(0));
    let session = provider(
        Duration::from_secs(4),
        Duration::from_millis(50),
        calls.clone(),
        |_| false,
    )
    .advisory_timeout(Duration::from_secs(1))
    .mandatory_timeout(Duration::from_millis(500))
    .defer_refresh(false)
    .build()
    .await
    .expect("the first fetch succeeds");
    assert_eq!(metrics.num_alive_tasks(), 1, "one background task");
    let deadline = Instant::now() + Duration::from_secs(20);
    while session.metrics().refreshes < 3 {
        assert!(Instant::now() < deadline, "no background refreshes");
        session.credentials().await.expect("credentials");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(session.metrics().waits, 0);
    let clone = session.clone();
    drop(session);
    sleep(Duration::from_millis(50)).await;
    assert_eq!(
        metrics.num_alive_tasks(),
        1,
        "a clone still holds the session"
    );
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > 0 {
        assert!(
            Instant::now() < deadline,
            "the background task outlived the session"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_eager_session_builds_on_a_current_thread_runtime() {
    // A waiting caller once woke itself forever here, starving the refresh
    // task of the only thread.
    let calls = Arc::new(AtomicUsize::new(0));
    let session = timeout(
        Duration::from_secs(10),
        provider(Duration::from_secs(3600), Duration::ZERO, calls, |_| false)
            .defer_refresh(false)
            .build(),
    )
    .await
    .expect("build completes")
    .expect("valid");
    assert_eq!(
        session
            .credentials()
            .await
            .expect("credentials")
            .access_key_id(),
        "AKID0"
    );
}

#[tokio::test]
async fn provider_failures_and_panics_are_typed_errors() {
    let panicking = RefreshableSession::custom(|| async { panic!("bug in async provider") })
        .build()
        .await
        .expect("valid");
    match panicking.credentials().await {
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert_eq!(error.to_string(), "the custom credential provider panicked")
        }
        other => panic!("{other:?}"),
    }
    let blocking_panic = RefreshableSession::custom_blocking(|| panic!("bug in sync provider"))
        .build()
        .await
        .expect("valid");
    match blocking_panic.credentials().await {
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert_eq!(error.to_string(), "the custom credential provider panicked")
        }
        other => panic!("{other:?}"),
    }
    let blocking = RefreshableSession::custom_blocking(|| {
        std::thread::sleep(Duration::from_millis(20));
        Ok(CustomCredentials::new()
            .access_key_id("AKIDSYNC")
            .secret_access_key("s")
            .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
    })
    .build()
    .await
    .expect("valid");
    assert_eq!(
        blocking
            .credentials()
            .await
            .expect("credentials")
            .access_key_id(),
        "AKIDSYNC"
    );
    let expired = RefreshableSession::custom(|| async {
        Ok(CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("s")
            .expiration(OffsetDateTime::now_utc() - time::Duration::seconds(1)))
    })
    .build()
    .await
    .expect("valid");
    assert!(matches!(
        expired.credentials().await,
        Err(Error::ExpiredCredentials { .. })
    ));
}

#[tokio::test]
async fn invalid_builder_values_name_their_field() {
    let role = || AssumeRole::new("arn:aws:iam::123456789012:role/app");
    let keys = || Credentials::new("AKID", "s", None, None);
    let cases: Vec<(Builder, &str)> = vec![
        (
            RefreshableSession::sts(role().duration(Duration::from_secs(1)))
                .region("us-east-1")
                .source_credentials(keys()),
            "DurationSeconds",
        ),
        (
            RefreshableSession::sts(role())
                .source_credentials(keys())
                .region("nowhere land"),
            "region",
        ),
        (
            RefreshableSession::sts(role())
                .region("us-east-1")
                .source_credentials(keys())
                .mfa_token_provider(|_| async { Ok(String::new()) }),
            "SerialNumber",
        ),
        (
            RefreshableSession::custom(|| async { Err("unused".into()) })
                .mfa_token_provider_blocking(|_| Ok(String::new())),
            "mfa_token_provider",
        ),
        (
            RefreshableSession::custom(|| async { Err("unused".into()) })
                .read_timeout(Duration::ZERO),
            "read_timeout",
        ),
    ];
    for (builder, field) in cases {
        let debug = format!("{builder:?}");
        match builder.build().await {
            Err(Error::Config(error)) => assert_eq!(error.field(), field, "{debug}"),
            other => panic!("{debug}: {other:?}"),
        }
    }
}
