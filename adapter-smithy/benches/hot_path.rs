//! The hot path: credentials for a caller while the cached one is fresh.
//!
//! Side by side in one run: the blocking session, the async session (its
//! future completes on the first poll), the session as the SDK's
//! credentials provider, the AWS SDK's own lazy identity cache on a hit
//! (`IdentityCache::lazy()`, what `aws_config` puts in front of every
//! provider), and a bare `ArcSwap` load of an `Arc` as the floor. Then the
//! two sessions and the SDK's cache on two threads at once. On one thread
//! the async calls are awaited in a task on a multi-threaded tokio runtime,
//! as in a service (the tokio session also in `block_on`); on two threads,
//! in `block_on` of a runtime per thread.

mod support;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
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
use support::sdk_components;
use time::OffsetDateTime;
use tokio::runtime::Runtime;

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

fn tokio_session(runtime: &Runtime) -> refresh_session_tokio::RefreshableSession {
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
    fn new(runtime: &Runtime) -> Self {
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

fn blocking_hits(session: &refresh_session_blocking::RefreshableSession, iters: u64) {
    for _ in 0..iters {
        black_box(session.credentials().expect("fresh"));
    }
}

/// `iters` calls by a task holding its own clone of the session, as a
/// service's tasks do.
async fn tokio_hits(session: refresh_session_tokio::RefreshableSession, iters: u64) {
    for _ in 0..iters {
        black_box(session.credentials().await.expect("fresh"));
    }
}

async fn provider_hits(provider: SessionCredentialsProvider, iters: u64) {
    for _ in 0..iters {
        black_box(provider.provide_credentials().await.expect("fresh"));
    }
}

async fn sdk_hits(sdk: Arc<SdkCache>, iters: u64) {
    for _ in 0..iters {
        sdk.hit().await;
    }
}

fn one_thread(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a runtime");
    let blocking = blocking_session();
    let session = tokio_session(&runtime);
    let provider = SessionCredentialsProvider::new(session.clone());
    let sdk = Arc::new(SdkCache::new(&runtime));
    let floor = ArcSwap::from_pointee(blocking.credentials().expect("cached"));

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("blocking credentials()", |b| {
        b.iter(|| blocking.credentials().expect("fresh"))
    });
    group.bench_function("tokio credentials()", |b| {
        b.iter_custom(|iters| in_task(&runtime, tokio_hits(session.clone(), iters)))
    });
    group.bench_function("tokio credentials() in block_on", |b| {
        b.iter_custom(|iters| on_runtimes(1, || tokio_hits(session.clone(), iters)))
    });
    group.bench_function("smithy provide_credentials()", |b| {
        b.iter_custom(|iters| in_task(&runtime, provider_hits(provider.clone(), iters)))
    });
    group.bench_function("aws-smithy lazy IdentityCache hit", |b| {
        b.iter_custom(|iters| in_task(&runtime, sdk_hits(Arc::clone(&sdk), iters)))
    });
    group.bench_function("ArcSwap load_full (floor)", |b| {
        b.iter(|| floor.load_full())
    });
    group.finish();
}

/// The time `work` takes in a task on `runtime`'s workers, as in a service.
fn in_task(runtime: &Runtime, work: impl Future<Output = ()> + Send + 'static) -> Duration {
    let task = runtime.spawn(async move {
        let began = Instant::now();
        work.await;
        began.elapsed()
    });
    runtime.block_on(task).expect("a task")
}

/// What `prepare` returns, run on `threads` threads at once: the time the
/// slowest took, so that perfect scaling reads the same as one thread.
/// Each thread prepares before the start, untimed.
fn on_threads<R: FnOnce()>(threads: usize, prepare: impl Fn() -> R + Sync) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let run = prepare();
                    start.wait();
                    let began = Instant::now();
                    run();
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

/// `work` awaited on `threads` threads at once, each in `block_on` of a
/// runtime of its own (truly in parallel, whatever a scheduler would do).
fn on_runtimes<F: Future<Output = ()>>(threads: usize, work: impl Fn() -> F + Sync) -> Duration {
    on_threads(threads, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let work = work();
        move || runtime.block_on(work)
    })
}

fn two_threads(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a runtime");
    let blocking = blocking_session();
    let session = tokio_session(&runtime);
    let sdk = Arc::new(SdkCache::new(&runtime));

    let mut group = c.benchmark_group("hot_path_threads");
    for threads in [1, 2] {
        group.bench_function(format!("blocking credentials() x{threads}"), |b| {
            b.iter_custom(|iters| on_threads(threads, || || blocking_hits(&blocking, iters)))
        });
        group.bench_function(format!("tokio credentials() x{threads}"), |b| {
            b.iter_custom(|iters| on_runtimes(threads, || tokio_hits(session.clone(), iters)))
        });
        group.bench_function(
            format!("aws-smithy lazy IdentityCache hit x{threads}"),
            |b| b.iter_custom(|iters| on_runtimes(threads, || sdk_hits(Arc::clone(&sdk), iters))),
        );
    }
    group.finish();
}

criterion_group!(benches, one_thread, two_threads);
criterion_main!(benches);
