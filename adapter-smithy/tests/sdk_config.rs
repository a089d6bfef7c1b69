//! Sessions built from an `SdkConfig` (its credentials sign the STS calls,
//! its HTTP client sends them), and SDK requests retried with refreshed
//! credentials after a service rejected theirs as expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::{BehaviorVersion, IdentityCache};
use aws_smithy_async::time::TimeSource;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::SdkConfig;
use aws_types::region::Region;
use refresh_session_smithy::SessionCredentialsProvider;
use refresh_session_tests::moto::Moto;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use refresh_session_tokio::prelude::*;

/// The SDK's plain-HTTP client, counting the `AssumeRole` calls sent
/// through it.
#[derive(Debug, Clone)]
struct CountingClient {
    inner: SharedHttpClient,
    assume_role_calls: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
    assume_role_calls: Arc<AtomicUsize>,
}

impl CountingClient {
    fn new() -> Self {
        Self {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            assume_role_calls: Arc::default(),
        }
    }

    fn assume_role_calls(&self) -> usize {
        self.assume_role_calls.load(Ordering::SeqCst)
    }
}

impl HttpClient for CountingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
            assume_role_calls: self.assume_role_calls.clone(),
        })
    }
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request.body().bytes().unwrap_or_default();
        if body.windows(17).any(|w| w == b"Action=AssumeRole") {
            self.assume_role_calls.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.call(request)
    }
}

/// What `aws_config::load_defaults` would give, pointed at `endpoint`.
fn base_config(
    endpoint: &str,
    credentials: aws_credential_types::Credentials,
    client: &CountingClient,
) -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(client.clone())
        .behavior_version(BehaviorVersion::latest())
        .build()
}

/// The loopback STS (hour-long credentials) and a base config for it,
/// signed with a fixed key, sending through `client`.
fn loopback(client: &CountingClient) -> (LoopbackSts, SdkConfig) {
    let sts_server = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    });
    let base_credentials =
        aws_credential_types::Credentials::new("AKIDBASE", "base-secret", None, None, "test");
    let base = base_config(&sts_server.url(), base_credentials, client);
    (sts_server, base)
}

/// A session for the loopback's role, built from `base`.
async fn loopback_session(base: &SdkConfig, name: &str) -> RefreshableSession {
    refresh_session_smithy::assume_role(
        base,
        AssumeRole::new("arn:aws:iam::123456789012:role/loopback").role_session_name(name),
    )
    .expect("the SDK's HTTP client is usable")
    .build()
    .await
    .expect("a session")
}

/// `base` with the session as its credentials provider.
fn session_config(base: &SdkConfig, provider: &SessionCredentialsProvider) -> SdkConfig {
    base.clone()
        .into_builder()
        .credentials_provider(provider.clone().shared())
        .identity_cache(IdentityCache::no_cache())
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_sdk_config_signs_with_its_provider_and_sends_through_its_client() {
    let moto = Moto::start();
    let client = CountingClient::new();
    let base = base_config(moto.url(), moto.user_credentials().to_sdk(), &client);
    let session = refresh_session_smithy::assume_role(
        &base,
        AssumeRole::new(&moto.role_arn).role_session_name("from-sdk-config"),
    )
    .expect("the SDK's HTTP client is usable")
    .build()
    .await
    .expect("a session");

    // moto verified the SigV4 signature made with the base config's
    // credentials, and the request went through the base config's client.
    let identity = session.whoami().await.expect("whoami");
    assert_eq!(
        identity.arn,
        "arn:aws:sts::123456789012:assumed-role/app/from-sdk-config"
    );
    assert_eq!(client.assume_role_calls(), 1);
    assert_eq!(session.metrics().refreshes, 1);

    // And an SDK client on the session's credentials sees the role.
    let provider = SessionCredentialsProvider::new(session);
    let sts = aws_sdk_sts::Client::new(&session_config(&base, &provider));
    let answer = sts.get_caller_identity().send().await.expect("STS answers");
    assert_eq!(answer.arn(), Some(identity.arn.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_answer_is_retried_once_with_a_refreshed_credential() {
    let client = CountingClient::new();
    let (sts_server, base) = loopback(&client);
    let session = loopback_session(&base, "stale").await;
    let provider = SessionCredentialsProvider::new(session);
    let config = session_config(&base, &provider);
    let stale = provider.stale_credentials();
    let plain = aws_sdk_sts::Client::new(&config);
    let retrying = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config)
            .interceptor(stale.clone())
            .retry_classifier(stale)
            .build(),
    );

    let first = retrying
        .get_caller_identity()
        .send()
        .await
        .expect("STS answers");
    let first_key = first.user_id().expect("a user id").to_owned();
    assert_eq!(sts_server.assume_role_calls(), 1);

    // The server revokes the session's credential hours before its expiry.
    sts_server.revoke(&first_key);
    let error = plain
        .get_caller_identity()
        .send()
        .await
        .expect_err("a client without the interceptor gets the rejection");
    let code = aws_sdk_sts::error::ProvideErrorMetadata::code(&error);
    assert_eq!(code, Some("ExpiredToken"));
    assert_eq!(sts_server.assume_role_calls(), 1, "nothing refreshed it");

    let second = retrying
        .get_caller_identity()
        .send()
        .await
        .expect("the retry succeeds with a refreshed credential");
    assert_ne!(second.user_id(), Some(first_key.as_str()));
    assert_eq!(
        second.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/loopback/stale")
    );
    assert_eq!(
        sts_server.assume_role_calls(),
        2,
        "exactly one extra STS call"
    );
    assert_eq!(client.assume_role_calls(), 2);
    assert_eq!(sts_server.refused(), 2, "one refusal per client");
    assert_eq!(provider.session().metrics().rejected, 1);
}

/// A clock an hour slow.
#[derive(Debug)]
struct HourSlow;

impl TimeSource for HourSlow {
    fn now(&self) -> SystemTime {
        SystemTime::now() - Duration::from_secs(3600)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_reads_the_sdk_config_time_source() {
    let client = CountingClient::new();
    let (sts_server, base) = loopback(&client);
    let base = base.into_builder().time_source(HourSlow).build();
    let session = loopback_session(&base, "clock").await;
    session.credentials().await.expect("credentials");
    // Signed an hour in the past by the config's clock, the first call is
    // refused; the session learns AWS's time from the answer and retries.
    assert_eq!(sts_server.requests().len(), 2);
    assert_eq!(sts_server.assume_role_calls(), 1);
}
