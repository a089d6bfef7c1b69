//! The hot path: credentials for a caller while the cached one is fresh.
//!
//! Side by side in one run: the blocking session, the async session (its
//! future completes on the first poll), the session as the SDK's
//! credentials provider, the AWS SDK's own lazy identity cache on a hit
//! (`IdentityCache::lazy()`, what `aws_config` puts in front of every
//! provider), and a bare `ArcSwap` load of an `Arc` as the floor. Then the
//! blocking session and the SDK's cache on two threads at once.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::client::identity::{
    ResolveCachedIdentity, SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use criterion::{Criterion, criterion_group, criterion_main};
use refresh_session_smithy::SessionCredentialsProvider;
use refresh_session_tokio::CustomCredentials;
use support::{ready, sdk_components};
use time::OffsetDateTime;

const HOUR: Duration = Duration::from_secs(3600);

/// A provider's answer that lives an hour: every call below is a hit.
fn hour_long() -> CustomCredentials {
    CustomCredentials::new()
        .access_key_id("ASIABENCH")
        .secret_access_key("bench-secret")
        .session_token("bench-token")
        .expiration(OffsetDateTime::now_utc() + HOUR)
}

fn blocking_session() -> refresh_session_blocking::RefreshableSession {
    let session = refresh_session_blocking::RefreshableSession::custom(|| Ok(hour_long()))
        .build()
        .expect("a session");
    session.credentials().expect("the first fetch");
    session
}

fn tokio_session(runtime: &tokio::runtime::Runtime) -> refresh_session_tokio::RefreshableSession {
    runtime.block_on(async {
        let session =
            refresh_session_tokio::RefreshableSession::custom(|| async { Ok(hour_long()) })
                .build()
                .await
                .expect("a session");
        session.credentials().await.expect("the first fetch");
        session
    })
}

/// The SDK's lazy cache with a provider whose credential lives an hour,
/// warmed up, and what an SDK operation hands it.
struct SdkCache {
    cache: SharedIdentityCache,
    resolver: SharedIdentityResolver,
    components: RuntimeComponents,
    config: ConfigBag,
}

impl SdkCache {
    fn new(runtime: &tokio::runtime::Runtime) -> Self {
        let credentials = aws_credential_types::Credentials::new(
            "ASIABENCH",
            "bench-secret",
            Some("bench-token".into()),
            Some(SystemTime::now() + HOUR),
            "bench",
        );
        let cache = Self {
            cache: IdentityCache::lazy().build(),
            resolver: SharedIdentityResolver::new(SharedCredentialsProvider::new(credentials)),
            components: sdk_components(),
            config: ConfigBag::base(),
        };
        runtime.block_on(cache.hit());
        cache
    }

    async fn hit(&self) {
        self.cache
            .resolve_cached_identity(self.resolver.clone(), &self.components, &self.config)
            .await
            .expect("an identity");
    }
}

fn one_thread(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let blocking = blocking_session();
    let session = tokio_session(&runtime);
    let provider = SessionCredentialsProvider::new(session.clone());
    let sdk = SdkCache::new(&runtime);
    // The SDK's cache starts a timeout on every lookup: it needs tokio.
    let _runtime = runtime.enter();
    let floor = ArcSwap::from_pointee(blocking.credentials().expect("cached"));

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("blocking credentials()", |b| {
        b.iter(|| blocking.credentials().expect("fresh"))
    });
    // The async ones are awaited in a task on the runtime, as a service
    // would.
    group.bench_function("tokio credentials()", |b| {
        b.to_async(&runtime)
            .iter(|| async { session.credentials().await.expect("fresh") })
    });
    group.bench_function("smithy provide_credentials()", |b| {
        b.to_async(&runtime)
            .iter(|| async { provider.provide_credentials().await.expect("fresh") })
    });
    group.bench_function("aws-smithy lazy IdentityCache hit", |b| {
        b.to_async(&runtime).iter(|| sdk.hit())
    });
    group.bench_function("ArcSwap load_full (floor)", |b| {
        b.iter(|| floor.load_full())
    });
    group.finish();
}

/// `op` on `threads` threads at once, `iters` times each: the time one
/// thread took per `iters`, so that perfect scaling reads the same as one
/// thread.
fn on_threads(
    runtime: &tokio::runtime::Runtime,
    threads: usize,
    iters: u64,
    op: &(dyn Fn() + Sync),
) -> Duration {
    let start = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let _runtime = runtime.enter();
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .max()
            .unwrap_or_default()
    })
}

fn two_threads(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let blocking = blocking_session();
    let session = tokio_session(&runtime);
    let sdk = Arc::new(SdkCache::new(&runtime));

    let mut group = c.benchmark_group("hot_path_threads");
    for threads in [1, 2] {
        group.bench_function(format!("blocking credentials() x{threads}"), |b| {
            b.iter_custom(|iters| {
                on_threads(&runtime, threads, iters, &|| {
                    std::hint::black_box(blocking.credentials().expect("fresh"));
                })
            })
        });
        group.bench_function(format!("tokio credentials() x{threads}"), |b| {
            b.iter_custom(|iters| {
                on_threads(&runtime, threads, iters, &|| {
                    std::hint::black_box(ready(session.credentials()).expect("fresh"));
                })
            })
        });
        group.bench_function(
            format!("aws-smithy lazy IdentityCache hit x{threads}"),
            |b| b.iter_custom(|iters| on_threads(&runtime, threads, iters, &|| ready(sdk.hit()))),
        );
    }
    group.finish();
}

criterion_group!(benches, one_thread, two_threads);
criterion_main!(benches);
