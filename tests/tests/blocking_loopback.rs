//! The blocking session against the loopback STS, which issues credentials
//! that live seconds: many threads across several expiries.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, Error, RefreshableSession, Rejection};
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;

const ROLE: &str = "arn:aws:iam::123456789012:role/loopback";
const THREADS: usize = 64;
const LIFETIME: Duration = Duration::from_secs(4);
const ADVISORY: Duration = Duration::from_millis(1500);
const MANDATORY: Duration = Duration::from_millis(500);
/// Bounds every loop of these tests.
const TEST_LIMIT: Duration = Duration::from_secs(60);

fn session(sts: &LoopbackSts, params: AssumeRole) -> Builder {
    RefreshableSession::sts(params)
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

/// Runs `THREADS` callers in a loop until the session has received
/// `credentials` credentials (the first fetch and its refreshes). Every
/// credential a caller gets must be valid at the time it asked. Returns the
/// access keys the callers saw.
fn hammer(session: &RefreshableSession, credentials: u64) -> HashSet<String> {
    let deadline = Instant::now() + TEST_LIMIT;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let session = session.clone();
            thread::spawn(move || {
                let done =
                    || session.metrics().refreshes >= credentials || Instant::now() > deadline;
                let mut seen = HashSet::new();
                while !done() {
                    for _ in 0..64 {
                        let asked_at = OffsetDateTime::now_utc();
                        let credentials = session.credentials().expect("credentials");
                        let expiration = credentials.expiration().expect("temporary credentials");
                        assert!(
                            expiration > asked_at,
                            "{} expired at {expiration}, asked at {asked_at}",
                            credentials.access_key_id()
                        );
                        seen.insert(credentials.access_key_id().to_owned());
                    }
                    thread::yield_now();
                }
                seen
            })
        })
        .collect();
    let seen = handles
        .into_iter()
        .flat_map(|h| h.join().expect("caller thread"))
        .collect();
    assert!(
        Instant::now() <= deadline,
        "the refreshes did not happen within {TEST_LIMIT:?}"
    );
    seen
}

#[test]
fn sixty_four_threads_across_three_lifetimes_see_no_expired_credential() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let session = session(&sts, AssumeRole::new(ROLE).role_session_name("deferred"))
        .build()
        .expect("valid");
    let seen = hammer(&session, 4);
    let issued = sts.issued();
    assert_eq!(sts.assume_role_calls() as usize, issued.len());
    assert!(issued.len() >= 4, "{issued:?}");
    // Deferred refreshes start when a caller enters the advisory window.
    sts.assert_one_call_per_lifetime(LIFETIME - ADVISORY);
    // Every call's credential was handed out (the last may have arrived as
    // the callers stopped).
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
        metrics.waits <= THREADS as u64,
        "only the first fetch made callers wait: {metrics:?}"
    );
}

#[test]
fn eager_sessions_never_make_callers_wait_after_construction() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let session = session(&sts, AssumeRole::new(ROLE).role_session_name("eager"))
        .defer_refresh(false)
        .build()
        .expect("the first fetch succeeds");
    assert_eq!(sts.assume_role_calls(), 1, "fetched at construction");
    let seen = hammer(&session, 4);
    let issued = sts.issued();
    assert!(issued.len() >= 4, "{issued:?}");
    // Background refreshes start at half-life at the earliest.
    sts.assert_one_call_per_lifetime(LIFETIME / 2);
    assert!(seen.len() + 1 >= issued.len());
    let metrics = session.metrics();
    assert_eq!(metrics.waits, 0, "{metrics:?}");
    assert_eq!(metrics.failed_refreshes, 0);
}

#[test]
fn the_mfa_provider_supplies_a_code_for_every_refresh() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let asked = Arc::new(AtomicUsize::new(0));
    let session = {
        let asked = asked.clone();
        session(
            &sts,
            AssumeRole::new(ROLE).serial_number("arn:aws:iam::123456789012:mfa/tester"),
        )
        .mfa_token_provider(move |_| {
            let n = asked.fetch_add(1, Ordering::SeqCst);
            Ok(format!("{:06}", 100_000 + n))
        })
        .build()
        .expect("valid")
    };
    let deadline = Instant::now() + TEST_LIMIT;
    while session.metrics().refreshes < 3 {
        assert!(
            Instant::now() < deadline,
            "no refreshes within {TEST_LIMIT:?}"
        );
        session.credentials().expect("credentials");
        thread::sleep(Duration::from_millis(20));
    }
    let requests = sts.requests();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        requests.len(),
        "one code per STS call"
    );
    for (n, form) in requests.iter().enumerate() {
        assert_eq!(form.get("TokenCode"), Some(&format!("{:06}", 100_000 + n)));
        assert_eq!(
            form.get("SerialNumber").map(String::as_str),
            Some("arn:aws:iam::123456789012:mfa/tester")
        );
    }
}

#[test]
fn advisory_callers_are_not_delayed_by_a_slow_sts() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    });
    let session = session(&sts, AssumeRole::new(ROLE).role_session_name("slow"))
        .build()
        .expect("valid");
    let first = session.credentials().expect("first fetch");
    // Into the advisory window, with STS sitting on its answers.
    let advisory_at = first.expiration().expect("expires") - ADVISORY;
    let now = OffsetDateTime::now_utc();
    if advisory_at > now {
        thread::sleep((advisory_at - now).unsigned_abs());
    }
    sts.hold();
    assert_eq!(session.credentials().expect("cached"), first);
    let deadline = Instant::now() + TEST_LIMIT;
    while sts.requests().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the refresh request never arrived"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // The refresh is provably in flight: STS has the request and has not
    // answered. Every caller still gets the cached credential at once.
    let callers: Vec<_> = (0..THREADS)
        .map(|_| {
            let session = session.clone();
            thread::spawn(move || session.credentials().expect("credentials"))
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.join().expect("caller"), first);
    }
    assert_eq!(session.metrics().refreshes, 1, "the refresh is still held");
    assert_eq!(
        session.metrics().waits,
        1,
        "no caller waited for the advisory refresh"
    );
    sts.release();
    while session.metrics().refreshes < 2 {
        assert!(Instant::now() < deadline, "the refresh never finished");
        thread::sleep(Duration::from_millis(5));
    }
    assert_ne!(session.credentials().expect("fresh"), first);
}

#[test]
fn a_rejected_credential_is_replaced_with_one_refresh() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    });
    let session = session(&sts, AssumeRole::new(ROLE).role_session_name("rejected"))
        .build()
        .expect("valid");
    let first = session.credentials().expect("credentials");
    session.whoami().expect("STS knows the key");
    // STS revokes the session's credential hours before its expiry.
    sts.revoke(first.access_key_id());
    let Err(Error::Service(refusal)) = session.whoami() else {
        panic!("a revoked key is refused")
    };
    let rejection = Rejection::from_code(refusal.code().as_str()).expect("a stale credential");
    assert_eq!(sts.assume_role_calls(), 1, "nothing refreshed it yet");
    for _ in 0..3 {
        assert!(session.credentials_rejected(first.access_key_id(), rejection));
    }
    let second = session.credentials().expect("credentials");
    assert_ne!(second.access_key_id(), first.access_key_id());
    assert!(session.whoami().is_ok(), "the new credential is accepted");
    assert_eq!(
        sts.assume_role_calls(),
        2,
        "one refresh for three rejections"
    );
    assert_eq!(session.metrics().rejected, 1);
}
