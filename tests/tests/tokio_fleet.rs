//! A fleet of async sessions against the loopback STS: one session per
//! key built on first use, STS calls bounded in number at once and paced,
//! idle members dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::error::TransportError;
use refresh_session_tests::faults::Fault;
use refresh_session_tests::fleet::{
    ACCOUNTS, PAST_EXPIRY, assert_static_stability, key, roles, short_lived_sts, sts,
};
use refresh_session_tests::sts_server::LoopbackSts;
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{
    BoxFuture, FleetBuilder, HttpTransport, ReqwestTransport, SessionFleet, TlsIdentity,
};

fn fleet(sts: &LoopbackSts) -> FleetBuilder {
    SessionFleet::builder()
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDFLEET", "fleet-secret", None, None))
}

/// Asks the fleet for every account's credentials at once, in tasks of
/// their own; panics if any fails.
async fn all_at_once(fleet: &SessionFleet, accounts: &[&str]) {
    let handles: Vec<_> = accounts
        .iter()
        .map(|account| {
            let (fleet, key) = (fleet.clone(), key(account));
            tokio::spawn(async move { fleet.credentials(&key).await })
        })
        .collect();
    for handle in handles {
        handle.await.expect("a task").expect("credentials");
    }
}

/// Reqwest, counting the requests in flight at once.
struct Counting {
    inner: ReqwestTransport,
    in_flight: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl HttpTransport for Counting {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let answer = self.inner.send(request, tls).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            answer
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_per_key_built_on_first_use() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts).build().expect("valid");
    let callers: Vec<&str> = (0..5).flat_map(|_| ACCOUNTS[..3].iter().copied()).collect();
    all_at_once(&fleet, &callers).await;
    assert_eq!(fleet.len(), 3);
    assert_eq!(sts.assume_role_calls(), 3, "one AssumeRole per key");
    let mut asked: Vec<String> = sts
        .requests()
        .iter()
        .filter_map(|form| form.get("RoleArn").cloned())
        .collect();
    asked.sort();
    assert_eq!(asked, roles(&ACCOUNTS[..3]));
    // The external id and region are part of the key.
    let other = key(ACCOUNTS[0]).external_id("tenant-7");
    fleet.credentials(&other).await.expect("credentials");
    let form = sts.requests().pop().expect("a request");
    assert_eq!(form.get("ExternalId").map(String::as_str), Some("tenant-7"));
    fleet
        .credentials(&key(ACCOUNTS[0]).region("eu-west-1"))
        .await
        .expect("credentials");
    assert_eq!((fleet.len(), sts.assume_role_calls()), (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_calls_in_flight_are_bounded() {
    let sts = sts(Duration::from_millis(300));
    let (in_flight, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let transport = Counting {
        inner: ReqwestTransport::new(HttpTimeouts::default(), None).expect("a client"),
        in_flight,
        most: most.clone(),
    };
    let fleet = fleet(&sts)
        .sessions(|members| members.transport(transport))
        .max_concurrent_refreshes(2)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS).await;
    assert_eq!(sts.assume_role_calls(), 6);
    assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_calls_are_paced() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts)
        .max_concurrent_refreshes(1)
        .max_refreshes_per_second(4.0)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS[..4]).await;
    let issued = sts.issued();
    assert_eq!(issued.len(), 4);
    for pair in issued.windows(2) {
        let gap = pair[1].issued_at - pair[0].issued_at;
        // 250 ms apart at four per second; the margin is the loopback's.
        assert!(gap >= Duration::from_millis(200), "calls {gap} apart");
    }
}

/// STS here accepts a request signed at most a second before it arrives.
/// At two refreshes a second, the sixth member's turn comes 2.5 s after the
/// first: it is signed when its turn comes, not when it was asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_cold_start_signs_each_request_when_its_turn_comes() {
    let sts = sts(Duration::ZERO);
    sts.set_signing_leeway(Duration::from_secs(1));
    let fleet = fleet(&sts)
        .max_concurrent_refreshes(ACCOUNTS.len())
        .max_refreshes_per_second(2.0)
        .build()
        .expect("valid");
    all_at_once(&fleet, &ACCOUNTS).await;
    let issued = sts.issued();
    assert_eq!(issued.len(), ACCOUNTS.len());
    let spread = issued[ACCOUNTS.len() - 1].issued_at - issued[0].issued_at;
    assert!(spread >= Duration::from_secs(2), "paced over {spread}");
    assert_eq!(sts.stale_signatures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_members_the_least_recently_used_member_goes() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts).max_members(2).build().expect("valid");
    for account in &ACCOUNTS[..3] {
        fleet.credentials(&key(account)).await.expect("credentials");
    }
    assert_eq!(fleet.len(), 2);
    fleet
        .credentials(&key(ACCOUNTS[2]))
        .await
        .expect("kept: no new call");
    assert_eq!(sts.assume_role_calls(), 3);
    fleet.credentials(&key(ACCOUNTS[0])).await.expect("rebuilt");
    assert_eq!(
        sts.assume_role_calls(),
        4,
        "the first member went, and came back"
    );
    let refused = SessionFleet::builder().max_members(0).build();
    let error = refused.map(drop).expect_err("no room for any member");
    assert_eq!(error.field(), "max_members");
}

/// Static stability reaches the members: with STS down after expiry, a
/// member set to serve expired credentials serves its last one; by default
/// the caller gets the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_serve_an_expired_credential_only_when_set_to() {
    for serve_expired in [true, false] {
        let sts = short_lived_sts();
        let fleet = fleet(&sts)
            .max_attempts(1)
            .serve_expired_on_failure(serve_expired)
            .build()
            .expect("valid");
        let first = fleet
            .credentials(&key(ACCOUNTS[0]))
            .await
            .expect("credentials");
        sts.inject(Fault::Unavailable, 100);
        tokio::time::sleep(PAST_EXPIRY).await;
        let after_expiry = fleet.credentials(&key(ACCOUNTS[0])).await;
        assert_static_stability(serve_expired, &first, after_expiry);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_members_are_dropped_and_rebuilt_on_next_use() {
    let sts = sts(Duration::ZERO);
    let fleet = fleet(&sts)
        .idle_timeout(Duration::from_secs(1))
        .build()
        .expect("valid");
    let session = fleet.session(&key(ACCOUNTS[0])).await.expect("a session");
    fleet
        .credentials(&key(ACCOUNTS[1]))
        .await
        .expect("credentials");
    assert_eq!(fleet.evict_idle(), 0, "both were just used");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fleet
        .credentials(&key(ACCOUNTS[1]))
        .await
        .expect("credentials");
    assert_eq!(
        fleet.len(),
        1,
        "the idle member went while the fleet was used"
    );
    // A clone held outside the fleet keeps working.
    session.credentials().await.expect("credentials");
    fleet
        .credentials(&key(ACCOUNTS[0]))
        .await
        .expect("credentials");
    assert_eq!(sts.assume_role_calls(), 3, "rebuilt on its next use");
}

#[test]
fn nonsense_fleet_options_name_their_field() {
    let cases = [
        (
            SessionFleet::builder().max_concurrent_refreshes(0),
            "max_concurrent_refreshes",
        ),
        (
            SessionFleet::builder().max_refreshes_per_second(0.0),
            "max_refreshes_per_second",
        ),
        (
            SessionFleet::builder().idle_timeout(Duration::from_millis(500)),
            "idle_timeout",
        ),
    ];
    for (builder, field) in cases {
        let error = builder.build().expect_err("refused");
        assert!(error.to_string().contains(field), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_one_mfa_session_and_one_code() {
    let sts = short_lived_sts();
    sts.require_mfa();
    let codes = Arc::new(AtomicUsize::new(0));
    let counted = codes.clone();
    let fleet = SessionFleet::builder()
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIAFLEET", "fleet-secret", None, None))
        .mfa_session(
            "arn:aws:iam::123456789012:mfa/fleet",
            Duration::from_secs(3600),
        )
        .sessions(|members| {
            members.mfa_token_provider(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok("654321".to_owned()) }
            })
        })
        .build()
        .expect("valid");
    let accounts = &ACCOUNTS[..3];
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(10), all_at_once(&fleet, accounts))
            .await
            .expect("within the limit");
        tokio::time::sleep(PAST_EXPIRY).await;
    }
    assert_eq!(codes.load(Ordering::SeqCst), 1, "one code for the fleet");
    assert_eq!(sts.mfa_sessions().len(), 1);
    assert_eq!(sts.assume_role_calls(), 9, "three roles, three lifetimes");
}
