//! A client from the cache against a new `aws_sdk_s3::Client` for the same
//! config (which shares one HTTP client, as `aws_config::load_defaults`
//! gives it): what the cache saves on every lookup.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;
use criterion::{Criterion, criterion_group, criterion_main};
use refresh_session_smithy::ClientCache;

fn config() -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "bench",
        )))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .behavior_version(BehaviorVersion::latest())
        .build()
}

fn client_cache(c: &mut Criterion) {
    let config = config();
    let cache = ClientCache::default();
    let mut group = c.benchmark_group("s3_client");
    group.bench_function("ClientCache::get", |b| {
        b.iter(|| cache.get(std::hint::black_box(&config), aws_sdk_s3::Client::new))
    });
    group.bench_function("Client::new", |b| {
        b.iter(|| aws_sdk_s3::Client::new(std::hint::black_box(&config)))
    });
    group.finish();
}

criterion_group!(benches, client_cache);
criterion_main!(benches);
