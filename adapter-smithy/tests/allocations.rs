//! The hot path allocates nothing: dhat's counting allocator watches a
//! thousand hits of the blocking session, the async session and the SDK
//! credentials provider. (One test in this binary, so that no other test
//! allocates while it counts.)

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use refresh_session_smithy::SessionCredentialsProvider;
use refresh_session_tokio::CustomCredentials;
use time::OffsetDateTime;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Heap blocks allocated so far.
fn allocations() -> u64 {
    dhat::HeapStats::get().total_blocks
}

const HITS: usize = 1000;

fn hour_long() -> CustomCredentials {
    CustomCredentials::new()
        .access_key_id("ASIAALLOC")
        .secret_access_key("secret")
        .session_token("token")
        .expiration(OffsetDateTime::now_utc() + Duration::from_secs(3600))
}

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a hit must not wait"),
    }
}

/// Allocations made by `HITS` calls of `hit`, after one call to warm up
/// (this thread's copy of the credential, the SDK conversion).
fn allocations_per_hits(hit: impl Fn()) -> u64 {
    hit();
    let before = allocations();
    for _ in 0..HITS {
        hit();
    }
    allocations() - before
}

#[test]
fn hits_allocate_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let blocking = refresh_session_blocking::RefreshableSession::custom(|| Ok(hour_long()))
        .build()
        .expect("a session");
    let session = runtime.block_on(async {
        refresh_session_tokio::RefreshableSession::custom(|| async { Ok(hour_long()) })
            .build()
            .await
            .expect("a session")
    });
    runtime
        .block_on(session.credentials())
        .expect("first fetch");
    blocking.credentials().expect("first fetch");
    let provider = SessionCredentialsProvider::new(session.clone());

    let counted = [
        (
            "blocking credentials()",
            allocations_per_hits(|| drop(blocking.credentials().expect("fresh"))),
        ),
        (
            "tokio credentials()",
            allocations_per_hits(|| drop(ready(session.credentials()).expect("fresh"))),
        ),
        (
            "provide_credentials()",
            allocations_per_hits(|| drop(ready(provider.provide_credentials()).expect("fresh"))),
        ),
    ];
    for (path, allocations) in counted {
        assert_eq!(
            allocations, 0,
            "{path}: {allocations} allocations in {HITS} hits"
        );
    }
    // The counter counts: a miss of the SDK conversion allocates.
    let before = allocations();
    drop(SessionCredentialsProvider::new(session).shared());
    assert!(allocations() > before);
}
