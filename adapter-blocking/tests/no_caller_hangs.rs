//! Whatever goes wrong in a refresh, every caller waiting for it gets a
//! typed error that says what happened, and the next caller starts a new
//! refresh. Every call runs under a deadline, so a regression fails here
//! instead of hanging the test run.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::error::{Abort, MfaError, Panicked, ProviderError};
use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{BoxError, Error};
use time::OffsetDateTime;

const DEADLINE: Duration = Duration::from_secs(20);
const CALLERS: usize = 8;

/// Runs `call` on a thread and waits for it at most [`DEADLINE`].
fn bounded<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || sender.send(call()));
    receiver
        .recv_timeout(DEADLINE)
        .expect("the call returned within the deadline")
}

/// [`CALLERS`] concurrent calls, each bounded.
fn many_calls(session: &RefreshableSession) -> Vec<Result<Arc<Credentials>, Error>> {
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let session = session.clone();
            let (sender, receiver) = mpsc::channel();
            thread::spawn(move || sender.send(session.credentials()));
            receiver
        })
        .collect();
    calls
        .into_iter()
        .map(|r| r.recv_timeout(DEADLINE).expect("every waiter returned"))
        .collect()
}

fn credentials(n: usize) -> CustomCredentials {
    CustomCredentials::new()
        .access_key_id(format!("AKID{n}"))
        .secret_access_key("secret")
        .expiration(OffsetDateTime::now_utc() + Duration::from_secs(3600))
}

/// Calls until the failed refresh's backoff is over (a second at most after
/// a first failure) and a new refresh answers; each call bounded.
fn after_the_backoff(session: &RefreshableSession) -> Result<Arc<Credentials>, Error> {
    for _ in 0..100 {
        let session = session.clone();
        match bounded(move || session.credentials()) {
            Err(Error::BackingOff { .. }) => thread::sleep(Duration::from_millis(100)),
            other => return other,
        }
    }
    panic!("still backing off after ten seconds")
}

#[test]
fn a_panicking_custom_provider_fails_every_waiter_and_the_next_call_refreshes() {
    let panicking = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = {
        let (panicking, calls) = (panicking.clone(), calls.clone());
        move || -> Result<CustomCredentials, BoxError> {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(50)); // let the callers pile up
            if panicking.load(Ordering::SeqCst) {
                panic!("vault client bug {n}");
            }
            Ok(credentials(n))
        }
    };
    let session = RefreshableSession::custom(provider)
        .max_attempts(1)
        .build()
        .expect("valid");
    for result in many_calls(&session) {
        match result {
            Err(Error::Provider(ProviderError::Failed(error))) => {
                assert_eq!(error.to_string(), "the custom credential provider panicked");
                let panicked = Panicked::find(&error).expect("the panic is the source");
                assert!(panicked.message().starts_with("vault client bug"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        calls.load(Ordering::SeqCst) <= CALLERS,
        "one call per fetch"
    );
    panicking.store(false, Ordering::SeqCst);
    let fresh = after_the_backoff(&session).expect("a new refresh");
    assert!(fresh.access_key_id().starts_with("AKID"));
}

#[test]
fn a_panicking_mfa_provider_fails_the_refresh_without_calling_sts() {
    // Nothing listens on the discard port: STS must not be called at all.
    let session = RefreshableSession::sts(
        AssumeRole::new("arn:aws:iam::123456789012:role/demo")
            .serial_number("arn:aws:iam::123456789012:mfa/user"),
    )
    .region("us-east-1")
    .endpoint_url("http://127.0.0.1:9")
    .source_credentials(Credentials::new("AKIDSOURCE", "secret", None, None))
    .mfa_token_provider(|_| panic!("token reader unplugged"))
    .build()
    .expect("valid");
    for result in many_calls(&session) {
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

#[test]
fn durations_at_the_end_of_time_do_not_overflow() {
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = {
        let calls = calls.clone();
        move || -> Result<CustomCredentials, BoxError> {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                return Err("vault busy".into());
            }
            Ok(credentials(n))
        }
    };
    let session = RefreshableSession::custom(provider)
        .retry_deadline(Duration::MAX)
        .mfa_command_timeout(Duration::MAX)
        .advisory_timeout(Duration::MAX)
        .mandatory_timeout(Duration::MAX)
        .build()
        .expect("valid");
    let first = session.clone();
    let failed = bounded(move || first.credentials()).expect_err("the vault is busy");
    assert!(failed.is_retryable(), "{failed}");
    let got = after_the_backoff(&session).expect("the next refresh succeeds");
    assert_eq!(got.access_key_id(), "AKID1");
}

/// Set in the child process of
/// `a_thread_that_cannot_start_fails_the_refresh`.
const CHILD: &str = "REFRESH_SESSION_TEST_NPROC_CHILD";

/// A thread that cannot be spawned (the process limit of a user reached):
/// run as an unprivileged user in a child process, whose limit the test
/// sets to the threads it already has.
#[test]
fn a_thread_that_cannot_start_fails_the_refresh() {
    if std::env::var_os(CHILD).is_some() {
        return without_threads();
    }
    let test = "a_thread_that_cannot_start_fails_the_refresh";
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("setpriv (util-linux) runs the child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child hung: a caller waited for a thread that never started");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("utf-8");
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("NOT STARTED, THEN REFRESHED"), "{stdout}");
}

fn without_threads() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let session = RefreshableSession::custom(|| Ok(credentials(1)))
        .build()
        .expect("valid");
    let before = getrlimit(Resource::Nproc);
    let threads = std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("a thread count");
    let limit = |current| Rlimit {
        current,
        maximum: before.maximum,
    };
    setrlimit(Resource::Nproc, limit(Some(threads))).expect("lower the limit");
    match session.credentials() {
        Err(Error::Aborted(Abort::NotStarted(reason))) => {
            assert!(
                reason.contains("no refresh thread could be started"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    setrlimit(Resource::Nproc, limit(before.current)).expect("restore the limit");
    // The next refresh, once the failed one's backoff (a second at most) is
    // over; bounded by the parent's deadline.
    let credentials = loop {
        match session.credentials() {
            Err(Error::BackingOff { .. }) => thread::sleep(Duration::from_millis(100)),
            other => break other.expect("the next refresh succeeds"),
        }
    };
    assert_eq!(credentials.access_key_id(), "AKID1");
    println!("NOT STARTED, THEN REFRESHED");
}

#[test]
fn a_bounded_wait_returns_while_the_refresh_goes_on() {
    let release = Arc::new(AtomicBool::new(false));
    let released = Arc::clone(&release);
    let session = RefreshableSession::custom(move || {
        // A provider that answers only once released, within the deadline.
        let started = Instant::now();
        while !released.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
            thread::sleep(Duration::from_millis(10));
        }
        Ok(credentials(7))
    })
    .build()
    .expect("valid");
    assert!(session.fresh_credentials().is_none(), "nothing fetched yet");
    let waiting = session.clone();
    let none = bounded(move || waiting.credentials_within(Duration::from_millis(100)));
    assert!(matches!(none, Ok(None)), "{none:?}");
    release.store(true, Ordering::SeqCst);
    let waiting = session.clone();
    let got = bounded(move || waiting.credentials_within(DEADLINE))
        .expect("no error")
        .expect("the refresh ended in time");
    assert_eq!(got.access_key_id(), "AKID7");
    assert_eq!(
        session
            .fresh_credentials()
            .map(|c| c.access_key_id().to_owned()),
        Some("AKID7".to_owned())
    );
}
