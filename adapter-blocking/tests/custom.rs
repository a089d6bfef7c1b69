//! Custom providers through the blocking session, on real threads and the
//! real clock, with credentials that live a second or two.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::error::ProviderError;
use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{BoxError, Error};
use time::OffsetDateTime;

/// A provider that counts its calls, fails while `failing` says so, and
/// issues credentials that live `lifetime`.
fn provider(
    lifetime: Duration,
    calls: Arc<AtomicUsize>,
    failing: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> impl Fn() -> Result<CustomCredentials, BoxError> + Send + Sync + 'static {
    move || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        if failing(n) {
            return Err(format!("vault unavailable (call {n})").into());
        }
        Ok(CustomCredentials::new()
            .access_key_id(format!("AKID{n}"))
            .secret_access_key("secret")
            .expiration(OffsetDateTime::now_utc() + lifetime))
    }
}

fn sleep_until(at: OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    if at > now {
        thread::sleep((at - now).unsigned_abs());
    }
}

#[test]
fn provider_errors_and_panics_are_typed_errors() {
    let failing = RefreshableSession::custom(|| Err("vault sealed".into()))
        .build()
        .expect("valid");
    match failing.credentials() {
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert_eq!(error.to_string(), "vault sealed")
        }
        other => panic!("{other:?}"),
    }
    let panicking = RefreshableSession::custom(|| panic!("bug in provider"))
        .build()
        .expect("valid");
    match panicking.credentials() {
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert_eq!(error.to_string(), "the custom credential provider panicked")
        }
        other => panic!("{other:?}"),
    }
    // The session survives its provider's panic.
    assert!(panicking.credentials().is_err());
    let naive = RefreshableSession::custom(|| {
        Ok(CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("s")
            .expiration_rfc3339("2030-01-01T00:00:00"))
    })
    .build()
    .expect("valid");
    assert!(matches!(
        naive.credentials(),
        Err(Error::Provider(ProviderError::InvalidExpiration(_)))
    ));
    let expired = RefreshableSession::custom(|| {
        Ok(CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("s")
            .expiration(OffsetDateTime::now_utc() - time::Duration::seconds(1)))
    })
    .build()
    .expect("valid");
    assert!(matches!(
        expired.credentials(),
        Err(Error::ExpiredCredentials { .. })
    ));
}

#[test]
fn an_advisory_failure_keeps_serving_the_cached_credential() {
    let calls = Arc::new(AtomicUsize::new(0));
    // The first call succeeds; refreshes fail.
    let session =
        RefreshableSession::custom(provider(Duration::from_secs(6), calls.clone(), |n| n > 0))
            .advisory_timeout(Duration::from_secs(3))
            .mandatory_timeout(Duration::from_millis(500))
            .build()
            .expect("valid");
    let first = session.credentials().expect("first fetch");
    // 1.4 s of advisory window left after the loop below: room for a slow
    // machine's oversleeping.
    sleep_until(first.expiration().expect("expires") - Duration::from_millis(2900));
    // In the advisory window: every call still gets the cached credential,
    // while refreshes fail and back off.
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        assert_eq!(
            session.credentials().expect("cached").access_key_id(),
            first.access_key_id()
        );
        thread::sleep(Duration::from_millis(5));
    }
    let metrics = session.metrics();
    assert!(metrics.failed_refreshes >= 1, "{metrics:?}");
    // ~200 calls in a second, but backoff keeps the attempts few.
    assert!(metrics.failed_refreshes <= 8, "{metrics:?}");
    assert_eq!(metrics.waits, 1);
}

/// A failed refresh never takes away a credential that is still valid: the
/// callers waiting in the mandatory window get it; once it has expired,
/// they get the error.
#[test]
fn a_mandatory_failure_hands_the_callers_the_valid_credential_then_the_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let session =
        RefreshableSession::custom(provider(Duration::from_secs(2), calls.clone(), |n| n > 0))
            .advisory_timeout(Duration::from_millis(500))
            .mandatory_timeout(Duration::from_millis(400))
            .build()
            .expect("valid");
    let first = session.credentials().expect("first fetch");
    sleep_until(first.expiration().expect("expires") - Duration::from_millis(300));
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let session = session.clone();
            thread::spawn(move || session.credentials())
        })
        .collect();
    for waiter in waiters {
        assert_eq!(waiter.join().expect("thread").expect("still valid"), first);
    }
    sleep_until(first.expiration().expect("expires"));
    match session.credentials() {
        Err(Error::BackingOff { last, .. }) => match &*last {
            Error::Provider(ProviderError::Failed(error)) => {
                assert!(
                    error.to_string().starts_with("vault unavailable"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        },
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert!(
                error.to_string().starts_with("vault unavailable"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn concurrent_callers_at_expiry_cause_one_provider_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = {
        let inner = provider(Duration::from_secs(3600), calls.clone(), |_| false);
        move || {
            thread::sleep(Duration::from_millis(200));
            inner()
        }
    };
    let session = RefreshableSession::custom(slow).build().expect("valid");
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let session = session.clone();
            thread::spawn(move || {
                session
                    .credentials()
                    .expect("credentials")
                    .access_key_id()
                    .to_owned()
            })
        })
        .collect();
    let keys: Vec<String> = callers
        .into_iter()
        .map(|c| c.join().expect("thread"))
        .collect();
    assert!(keys.iter().all(|k| k == "AKID0"), "{keys:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
