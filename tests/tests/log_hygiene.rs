//! Secrets never reach the logs. Every event of full STS runs in both
//! adapters (refreshes, a retried fault, MFA codes, `whoami`, a failure)
//! is captured at TRACE level, dependencies' `log` records included, and
//! searched for every secret key, session token and MFA code involved.
//! Alone in its binary: it installs the global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use refresh_session_tests::faults::Fault;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};

const SOURCE_SECRET: &str = "source-secret-7f3a9c";
const MFA_CODE: &str = "908070";
const SERIAL: &str = "arn:aws:iam::123456789012:mfa/hygiene";
const ROLE: &str = "arn:aws:iam::123456789012:role/hygiene";

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

fn sts() -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    })
}

fn blocking_run(sts: &LoopbackSts) {
    use refresh_session_blocking::RefreshableSession;
    use refresh_session_blocking::prelude::*;
    let session = RefreshableSession::sts(AssumeRole::new(ROLE).serial_number(SERIAL))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDHYGIENE", SOURCE_SECRET, None, None))
        .mfa_token_provider(|_| Ok(MFA_CODE.to_owned()))
        .build()
        .expect("valid");
    session
        .credentials()
        .expect("credentials after a retried fault");
    session.whoami().expect("whoami");
    let failing = RefreshableSession::sts(AssumeRole::new(ROLE))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDHYGIENE", SOURCE_SECRET, None, None))
        .max_attempts(1)
        .build()
        .expect("valid");
    sts.inject(Fault::Unavailable, 1);
    failing.credentials().expect_err("the fault is not retried");
}

async fn tokio_run(sts: &LoopbackSts) {
    use refresh_session_tokio::RefreshableSession;
    use refresh_session_tokio::prelude::*;
    let session = RefreshableSession::sts(AssumeRole::new(ROLE).serial_number(SERIAL))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDHYGIENE", SOURCE_SECRET, None, None))
        .mfa_token_provider(|_| async { Ok(MFA_CODE.to_owned()) })
        .defer_refresh(false)
        .build()
        .await
        .expect("credentials after a retried fault");
    session.whoami().await.expect("whoami");
}

#[test]
fn no_secret_and_no_mfa_code_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sts = sts();
    sts.inject(Fault::Throttling, 1);
    blocking_run(&sts);
    sts.inject(Fault::Reset, 1);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(tokio_run(&sts));
    drop(runtime);

    let log = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    // The capture works: the sessions' own events and the HTTP clients' are
    // there.
    for expected in [
        "credentials refreshed",
        "retrying the upstream call",
        "refresh failed",
        "ASIALOOP",
    ] {
        assert!(log.contains(expected), "no `{expected}` in the log:\n{log}");
    }
    let issued = sts.assume_role_calls();
    let mut secrets = vec![SOURCE_SECRET.to_owned(), MFA_CODE.to_owned()];
    for n in 1..=issued {
        secrets.push(format!("loopback-secret-{n}"));
        secrets.push(format!("loopback-token-{n}"));
    }
    for secret in &secrets {
        let lines: Vec<&str> = log.lines().collect();
        if let Some(at) = lines.iter().position(|line| line.contains(secret.as_str())) {
            let context = lines[at.saturating_sub(12)..=at].join("\n");
            panic!("`{secret}` leaked into the log:\n{context}");
        }
    }
    // Wire dumps would split secrets over lines, out of reach of a search:
    // they must not be there at all.
    for dump in ["ureq_proto::util", "canonical_request"] {
        assert!(!log.contains(dump), "`{dump}` is in the log");
    }
}
