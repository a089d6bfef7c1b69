//! Whatever goes wrong in a refresh, every caller waiting for it gets a
//! typed error that says what happened, and the next caller starts a new
//! refresh: panics in hooks (their synchronous part too) and in the HTTP
//! transport, a runtime without timers, a runtime that shut down. Every
//! call runs under a deadline, so a regression fails here instead of
//! hanging the test run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use refresh_session_tokio::BoxFuture;
use refresh_session_tokio::error::TransportError;
use refresh_session_tokio::error::{Abort, MfaError, Panicked, ProviderError};
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{BoxError, Builder, Error, HttpTransport, TlsIdentity};
use time::OffsetDateTime;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(20);
const CALLERS: usize = 8;

fn credentials(n: usize) -> CustomCredentials {
    CustomCredentials::new()
        .access_key_id(format!("AKID{n}"))
        .secret_access_key("secret")
        .expiration(OffsetDateTime::now_utc() + Duration::from_secs(3600))
}

/// [`CALLERS`] concurrent calls in tasks, each bounded.
async fn many_calls(session: &RefreshableSession) -> Vec<Result<Arc<Credentials>, Error>> {
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { timeout(DEADLINE, session.credentials()).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        let bounded = task.await.expect("the caller did not panic");
        results.push(bounded.expect("every waiter returned within the deadline"));
    }
    results
}

/// Runs `work` on a thread with its own runtime of `kind`, at most
/// [`DEADLINE`]: for runtimes whose own timers cannot bound it.
fn on_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || sender.send(work()));
    receiver
        .recv_timeout(DEADLINE)
        .expect("the call returned within the deadline")
}

fn expect_provider_panic(result: Result<Arc<Credentials>, Error>, message: &str) {
    match result {
        Err(Error::Provider(ProviderError::Failed(error))) => {
            assert_eq!(error.to_string(), "the custom credential provider panicked");
            let panicked = Panicked::find(&error).expect("the panic is the source");
            assert_eq!(panicked.message(), message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_synchronous_part_of_a_provider_reaches_every_waiter() {
    let panicking = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let session = {
        let (panicking, calls) = (panicking.clone(), calls.clone());
        RefreshableSession::custom(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let lookup: Option<&str> = (!panicking.load(Ordering::SeqCst)).then_some("key");
            let key = lookup.expect("the key is in the keychain");
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(credentials(n).access_key_id(format!("{key}{n}")))
            }
        })
    }
    .max_attempts(1)
    .build()
    .await
    .expect("valid");
    for result in many_calls(&session).await {
        expect_provider_panic(result, "the key is in the keychain");
    }
    panicking.store(false, Ordering::SeqCst);
    // The next refresh, once the failed one's backoff (a second at most
    // after a first failure) is over.
    let fresh = timeout(DEADLINE, async {
        loop {
            match session.credentials().await {
                Err(Error::BackingOff { .. }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => return other,
            }
        }
    })
    .await
    .expect("bounded")
    .expect("the next refresh succeeds");
    assert!(fresh.access_key_id().starts_with("key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_future_of_a_provider_reaches_every_waiter() {
    let session = RefreshableSession::custom(|| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        panic!("broker connection lost")
    })
    .max_attempts(1)
    .build()
    .await
    .expect("valid");
    for result in many_calls(&session).await {
        expect_provider_panic(result, "broker connection lost");
    }
}

#[tokio::test]
async fn a_panic_in_an_mfa_provider_fails_the_refresh_without_calling_sts() {
    type Provider = fn(String) -> BoxFuture<'static, Result<String, BoxError>>;
    let in_call: Provider = |_| panic!("token reader unplugged");
    let in_future: Provider = |_| Box::pin(async { panic!("token reader unplugged") });
    for provider in [in_call, in_future] {
        // Nothing listens on the discard port: STS must not be called.
        let session = RefreshableSession::sts(
            AssumeRole::new("arn:aws:iam::123456789012:role/demo")
                .serial_number("arn:aws:iam::123456789012:mfa/user"),
        )
        .region("us-east-1")
        .endpoint_url("http://127.0.0.1:9")
        .source_credentials(Credentials::new("AKIDSOURCE", "secret", None, None))
        .mfa_token_provider(provider)
        .build()
        .await
        .expect("valid");
        for result in many_calls(&session).await {
            match result {
                Err(Error::Mfa(MfaError::Provider(error))) => {
                    assert_eq!(error.to_string(), "the MFA token provider panicked");
                    let panicked = Panicked::find(&error).expect("the panic is the source");
                    assert_eq!(panicked.message(), "token reader unplugged");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(session.metrics().upstream_calls, 0);
    }
}

#[tokio::test]
async fn a_panic_in_a_source_provider_fails_the_refresh() {
    let session = RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/demo"))
        .region("us-east-1")
        .endpoint_url("http://127.0.0.1:9")
        .source_provider(|| -> std::future::Ready<Result<Credentials, BoxError>> {
            panic!("credentials file half written")
        })
        .build()
        .await
        .expect("valid");
    for result in many_calls(&session).await {
        match result {
            Err(Error::Source(error)) => {
                let Error::SourceProvider(error) = &*error else {
                    panic!("{error:?}")
                };
                let panicked = Panicked::find(error).expect("the panic is the source");
                assert_eq!(panicked.what(), "source credentials provider");
                assert_eq!(panicked.message(), "credentials file half written");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A user transport that panics: in `send` itself, or when its future is
/// polled.
struct PanickingTransport {
    in_future: bool,
}

impl HttpTransport for PanickingTransport {
    fn send(
        &self,
        _: http::Request<Vec<u8>>,
        _: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        if !self.in_future {
            panic!("connection pool poisoned");
        }
        Box::pin(async { panic!("connection pool poisoned") })
    }
}

#[tokio::test]
async fn a_panic_in_the_http_transport_aborts_the_refresh_for_every_waiter() {
    for in_future in [false, true] {
        let session =
            RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/demo"))
                .region("us-east-1")
                .source_credentials(Credentials::new("AKIDSOURCE", "secret", None, None))
                .transport(PanickingTransport { in_future })
                .build()
                .await
                .expect("valid");
        for result in many_calls(&session).await {
            match result {
                Err(Error::Aborted(Abort::Panicked(panicked))) => {
                    assert_eq!(panicked.what(), "HTTP transport");
                    assert_eq!(panicked.message(), "connection pool poisoned");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(session.metrics().upstream_calls, 1, "aborted, not retried");
    }
}

/// A provider that fails (retryably) on its first call and then succeeds.
fn flaky_session() -> Builder {
    let calls = Arc::new(AtomicUsize::new(0));
    RefreshableSession::custom(move || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => Err(BoxError::from("vault busy")),
                n => Ok(credentials(n)),
            }
        }
    })
}

/// STS busy: every answer is a 503, which is retried after a backoff.
struct Unavailable;

impl HttpTransport for Unavailable {
    fn send(
        &self,
        _: http::Request<Vec<u8>>,
        _: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        let mut busy = http::Response::new(b"<ErrorResponse/>".to_vec());
        *busy.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        Box::pin(async { Ok(busy) })
    }
}

#[test]
fn a_runtime_without_timers_fails_the_refresh_that_must_wait_for_a_retry() {
    let result = on_thread(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime without a time driver");
        runtime.block_on(async {
            let session =
                RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/demo"))
                    .region("us-east-1")
                    .source_credentials(Credentials::new("AKIDSOURCE", "secret", None, None))
                    .transport(Unavailable)
                    .build()
                    .await
                    .expect("valid");
            session.credentials().await
        })
    });
    match result {
        Err(Error::Aborted(Abort::Panicked(panicked))) => {
            assert_eq!(panicked.what(), "runtime's timer");
            assert!(
                panicked.message().contains("timers are disabled"),
                "{panicked:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_session_whose_runtime_shut_down_fails_instead_of_hanging() {
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let session = first
        .block_on(flaky_session().max_attempts(1).build())
        .expect("valid");
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    let result = second.block_on(async { timeout(DEADLINE, session.credentials()).await });
    match result.expect("bounded") {
        Err(Error::Aborted(Abort::Dropped(worker))) => assert_eq!(worker, "refresh task"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refresh_cancelled_by_its_runtime_shutting_down_reaches_every_waiter() {
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let started = Arc::new(AtomicBool::new(false));
    let session = {
        let started = started.clone();
        first
            .block_on(
                RefreshableSession::custom(move || {
                    started.store(true, Ordering::SeqCst);
                    async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(credentials(0))
                    }
                })
                .build(),
            )
            .expect("valid")
    };
    let second = tokio::runtime::Runtime::new().expect("runtime");
    let waiters = second.block_on(async {
        let waiting: Vec<_> = (0..CALLERS)
            .map(|_| {
                let session = session.clone();
                tokio::spawn(async move { timeout(DEADLINE, session.credentials()).await })
            })
            .collect();
        while !started.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.shutdown_background();
        let mut results = Vec::new();
        for waiter in waiting {
            results.push(waiter.await.expect("no panic").expect("bounded"));
        }
        results
    });
    for result in waiters {
        match result {
            Err(Error::Aborted(Abort::Dropped(worker))) => assert_eq!(worker, "refresh task"),
            other => panic!("{other:?}"),
        }
    }
}
