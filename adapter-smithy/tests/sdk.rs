//! The AWS SDK for Rust with a session as its credentials provider, against
//! moto (SigV4 verified), and the client cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::config::BehaviorVersion;
use aws_sdk_s3::config::IdentityCache;
use aws_sdk_s3::primitives::ByteStream;
use aws_types::SdkConfig;
use aws_types::region::Region;
use refresh_session_smithy::{ClientCache, Eviction, SessionCredentialsProvider};
use refresh_session_tests::moto::Moto;
use refresh_session_tokio::prelude::*;

/// Credentials that live six seconds (moto issues them on loopback).
const LIFETIME: Duration = Duration::from_secs(6);
const TEST_LIMIT: Duration = Duration::from_secs(30);

async fn provider(moto: &Moto) -> SessionCredentialsProvider {
    let session = RefreshableSession::sts(
        AssumeRole::new(&moto.role_arn)
            .role_session_name("sdk")
            .duration(LIFETIME),
    )
    .region("us-east-1")
    .endpoint_url(moto.url())
    .source_credentials(moto.user_credentials())
    .defer_refresh(false)
    .build()
    .await
    .expect("a session");
    SessionCredentialsProvider::new(session)
}

fn sdk_config(endpoint: &str, region: &str, provider: SessionCredentialsProvider) -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(provider.shared())
        // The session caches; the SDK's cache would only add a second rule.
        .identity_cache(IdentityCache::no_cache())
        .behavior_version(BehaviorVersion::latest())
        .build()
}

fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

async fn access_key(provider: &SessionCredentialsProvider) -> String {
    provider
        .provide_credentials()
        .await
        .expect("credentials")
        .access_key_id()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_and_s3_clients_keep_working_across_a_refresh() {
    let moto = Moto::start();
    let provider = provider(&moto).await;
    let config = sdk_config(moto.url(), "us-east-1", provider.clone());
    let sts = aws_sdk_sts::Client::new(&config);
    let s3 = s3_client(&config);

    let identity = sts.get_caller_identity().send().await.expect("STS answers");
    assert_eq!(
        identity.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/app/sdk")
    );
    s3.create_bucket()
        .bucket("sdk-bucket")
        .send()
        .await
        .expect("bucket");
    let first_key = access_key(&provider).await;

    let started = Instant::now();
    let mut round = 0;
    while access_key(&provider).await == first_key {
        assert!(
            started.elapsed() < TEST_LIMIT,
            "no refresh within {TEST_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The same clients, now signing with the refreshed credential.
    for _ in 0..3 {
        round += 1;
        let body = format!("round {round}");
        s3.put_object()
            .bucket("sdk-bucket")
            .key("object")
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .expect("put");
        let got = s3
            .get_object()
            .bucket("sdk-bucket")
            .key("object")
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(got.as_ref(), body.as_bytes());
        sts.get_caller_identity().send().await.expect("STS answers");
    }
    assert!(provider.session().metrics().refreshes >= 2);
}

#[tokio::test]
async fn a_fresh_credential_is_ready_without_waiting() {
    let moto = Moto::start();
    let provider = provider(&moto).await;
    let future = provider.provide_credentials();
    // `ready` futures complete on their first poll.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    assert!(future.as_mut().poll(&mut cx).is_ready());
}

/// A config per region, all else equal.
fn region_config(region: &str) -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new(region.to_owned()))
        .behavior_version(BehaviorVersion::latest())
        .build()
}

/// Gets the S3 client for `region`, counting constructions.
fn get(cache: &ClientCache, built: &AtomicUsize, region: &str) {
    cache.get(&region_config(region), |config| {
        built.fetch_add(1, Ordering::SeqCst);
        aws_sdk_s3::Client::new(config)
    });
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let cache = ClientCache::new(Eviction::Lru, 2).expect("size");
    let built = AtomicUsize::new(0);
    for region in ["eu-west-1", "us-east-1", "eu-west-1", "ap-south-1"] {
        get(&cache, &built, region);
    }
    assert_eq!(built.load(Ordering::SeqCst), 3);
    get(&cache, &built, "eu-west-1");
    assert_eq!(built.load(Ordering::SeqCst), 3, "kept: used recently");
    get(&cache, &built, "us-east-1");
    assert_eq!(built.load(Ordering::SeqCst), 4, "evicted: least recent");
}

#[test]
fn lfu_evicts_the_least_frequently_used() {
    let cache = ClientCache::new(Eviction::Lfu, 2).expect("size");
    let built = AtomicUsize::new(0);
    for region in [
        "eu-west-1",
        "eu-west-1",
        "eu-west-1",
        "us-east-1",
        "ap-south-1",
    ] {
        get(&cache, &built, region);
    }
    // us-east-1 (one use) went, not eu-west-1 (three, though older).
    assert_eq!(built.load(Ordering::SeqCst), 3);
    get(&cache, &built, "eu-west-1");
    assert_eq!(built.load(Ordering::SeqCst), 3);
    get(&cache, &built, "us-east-1");
    assert_eq!(built.load(Ordering::SeqCst), 4);
}

#[test]
fn resize_evicts_and_zero_is_refused() {
    let cache = ClientCache::new(Eviction::Lru, 3).expect("size");
    let built = AtomicUsize::new(0);
    for region in ["eu-west-1", "us-east-1", "ap-south-1"] {
        get(&cache, &built, region);
    }
    cache.resize(1).expect("size");
    assert_eq!(cache.len(), 1);
    get(&cache, &built, "ap-south-1");
    assert_eq!(built.load(Ordering::SeqCst), 3, "the most recent stayed");
    assert_eq!(cache.resize(0).expect_err("zero").field(), "max_size");
    assert!(ClientCache::new(Eviction::Lfu, 0).is_err());
}

#[test]
fn equal_configs_share_an_entry_and_types_do_not() {
    let cache = ClientCache::default();
    let built = AtomicUsize::new(0);
    get(&cache, &built, "eu-west-1");
    get(&cache, &built, "eu-west-1"); // an equal config, built anew
    assert_eq!(built.load(Ordering::SeqCst), 1);
    let config = region_config("eu-west-1");
    cache.get(&config, aws_sdk_sts::Client::new);
    assert_eq!(cache.len(), 2, "an STS client is another entry");
    let other_endpoint = region_config("eu-west-1")
        .into_builder()
        .endpoint_url("http://127.0.0.1:1")
        .build();
    cache.get(&other_endpoint, aws_sdk_s3::Client::new);
    assert_eq!(cache.len(), 3, "another endpoint is another entry");
    let other_retries = region_config("eu-west-1")
        .into_builder()
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(7))
        .build();
    cache.get(&other_retries, aws_sdk_s3::Client::new);
    assert_eq!(cache.len(), 4, "other retry settings are another entry");
    get(&cache, &built, "eu-west-1");
    assert_eq!(
        built.load(Ordering::SeqCst),
        1,
        "the first client is still cached"
    );
}

#[test]
fn concurrent_misses_build_one_client() {
    let cache = Arc::new(ClientCache::default());
    let built = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, built, barrier) = (cache.clone(), built.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.get(&region_config("eu-west-1"), |config| {
                    built.fetch_add(1, Ordering::SeqCst);
                    // Long enough for every thread to miss meanwhile.
                    std::thread::sleep(Duration::from_millis(100));
                    aws_sdk_s3::Client::new(config)
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    assert_eq!(built.load(Ordering::SeqCst), 1);
}
