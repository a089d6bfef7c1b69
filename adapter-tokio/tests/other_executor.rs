//! The session logic needs no tokio reactor: a full refresh cycle, MFA
//! included, runs under async-std with an in-memory STS. Anything that
//! needed tokio's reactor or timer would panic here ("there is no reactor
//! running").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use refresh_session_core::Secret;
use refresh_session_core::error::TransportError;
use refresh_session_core::harness::assume_role_response;
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{BoxFuture, HttpTransport, Runtime, TlsIdentity};
use time::OffsetDateTime;

const LIFETIME: Duration = Duration::from_secs(3);

struct AsyncStd;

impl Runtime for AsyncStd {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(async_std::task::spawn(task));
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        drop(async_std::task::spawn_blocking(work));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(duration))
    }
}

/// STS in memory: answers `AssumeRole` with credentials that live
/// `LIFETIME`, and remembers the MFA codes it was sent.
#[derive(Default)]
struct MemorySts {
    calls: AtomicU64,
    codes: std::sync::Mutex<Vec<String>>,
}

impl HttpTransport for MemorySts {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        _tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        Box::pin(async move {
            assert!(
                request.headers().contains_key("authorization"),
                "requests are signed"
            );
            let form: HashMap<String, String> = form_urlencoded::parse(request.body())
                .into_owned()
                .collect();
            assert_eq!(form.get("Action").map(String::as_str), Some("AssumeRole"));
            self.codes
                .lock()
                .expect("codes")
                .push(form["TokenCode"].clone());
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let credentials = Credentials::new(
                format!("ASIAMEMORY{n}"),
                "secret",
                Some(Secret::new("token")),
                Some(OffsetDateTime::now_utc() + LIFETIME),
            );
            Ok(assume_role_response(&credentials))
        })
    }
}

#[test]
fn a_full_refresh_cycle_runs_under_async_std() {
    async_std::task::block_on(async {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no tokio runtime here"
        );
        let sts = Arc::new(MemorySts::default());
        let session = RefreshableSession::sts(
            AssumeRole::new("arn:aws:iam::123456789012:role/app")
                .serial_number("arn:aws:iam::123456789012:mfa/me"),
        )
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "source-secret", None, None))
        .mfa_token_provider(|_serial| async { Ok("424242".to_owned()) })
        .advisory_timeout(Duration::from_secs(1))
        .mandatory_timeout(Duration::from_millis(500))
        .defer_refresh(false)
        .runtime(AsyncStd)
        .transport(sts.clone())
        .build()
        .await
        .expect("the first fetch succeeds");
        let first = session.credentials().await.expect("credentials");
        assert_eq!(first.access_key_id(), "ASIAMEMORY1");

        // The background task refreshes before the advisory window, on
        // async-std's timer.
        let deadline = Instant::now() + Duration::from_secs(20);
        while sts.calls.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "no background refreshes");
            let credentials = session.credentials().await.expect("credentials");
            assert!(credentials.expiration().expect("expires") > OffsetDateTime::now_utc());
            async_std::task::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(session.metrics().waits, 0);
        assert_eq!(*sts.codes.lock().expect("codes"), ["424242"; 3]);
    });
}

#[test]
fn blocking_providers_run_on_the_executors_blocking_threads() {
    async_std::task::block_on(async {
        let session = RefreshableSession::custom_blocking(|| {
            std::thread::sleep(Duration::from_millis(10));
            Ok(CustomCredentials::new()
                .access_key_id("AKIDBLOCKING")
                .secret_access_key("s")
                .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
        })
        .runtime(AsyncStd)
        .transport(Arc::new(MemorySts::default()))
        .build()
        .await
        .expect("valid");
        assert_eq!(
            session
                .credentials()
                .await
                .expect("credentials")
                .access_key_id(),
            "AKIDBLOCKING"
        );
    });
}

#[test]
fn without_a_runtime_the_builder_says_what_to_set() {
    let result = async_std::task::block_on(
        RefreshableSession::custom(|| async { Err("unused".into()) }).build(),
    );
    match result {
        Err(refresh_session_tokio::Error::Config(error)) => assert_eq!(error.field(), "runtime"),
        other => panic!("{other:?}"),
    }
}
