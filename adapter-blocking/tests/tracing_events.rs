//! Every refresh is a `tracing` event operators can see, and no event
//! carries a secret. Alone in its binary: it installs the global
//! subscriber, since refreshes run on the session's own threads.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use refresh_session_blocking::prelude::*;
use time::OffsetDateTime;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn refreshes_are_logged_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let calls = Arc::new(AtomicUsize::new(0));
    let session = {
        let calls = calls.clone();
        RefreshableSession::custom(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                return Err("vault sealed".into());
            }
            Ok(CustomCredentials::new()
                .access_key_id("ASIALOGGED")
                .secret_access_key("secret-never-logged")
                .session_token("token-never-logged")
                .expiration(OffsetDateTime::now_utc() + time::Duration::seconds(2)))
        })
        .advisory_timeout(std::time::Duration::from_secs(1))
        .mandatory_timeout(std::time::Duration::from_secs(1))
        .build()
        .expect("valid")
    };
    session.credentials().expect("first fetch");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Mandatory window: this caller waits for the refresh, which fails, and
    // gets the credential that is still valid.
    assert_eq!(
        session.credentials().expect("still valid").access_key_id(),
        "ASIALOGGED"
    );
    drop(session);

    let log = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("text");
    assert!(log.contains("credentials refreshed"), "{log}");
    assert!(log.contains("ASIALOGGED"), "{log}");
    assert!(log.contains("refresh failed"), "{log}");
    assert!(log.contains("vault sealed"), "{log}");
    for secret in ["secret-never-logged", "token-never-logged"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}
