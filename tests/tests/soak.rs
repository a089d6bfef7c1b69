//! Chaos soak, both adapters: many concurrent callers (1,000 by default)
//! for `SOAK_SECONDS` (30 in the default test run; `scripts/soak` runs ten
//! minutes), asking a session on a loopback STS that injects faults at
//! random (5xx, throttling, bursts of AccessDenied, answers slower than the
//! read timeout, resets, bodies cut off, a `Date` ahead of the clock) and a
//! custom session whose provider sometimes panics or returns an expired
//! credential. Credentials live four seconds.
//!
//! Checked: no expired credential handed out, every call returns within
//! its deadline, no panic escapes, STS attempts stay under one a second
//! whatever the callers (one call in flight), memory does not grow. The
//! figures are printed (`--nocapture`) for docs/reliability.md.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::engine::Metrics;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Error, SessionOptions};
use refresh_session_tests::faults::{Fault, MAX_ATTEMPTS, READ_TIMEOUT, RETRY_DEADLINE, SLOW};
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;

const LIFETIME: Duration = Duration::from_secs(4);
/// No call may take longer: the retry deadline, one slow attempt, slack.
const DEADLINE: Duration = Duration::from_secs(20);
const ROLE: &str = "arn:aws:iam::123456789012:role/soak";

/// Keeps the custom provider's deliberate panics out of the test's output;
/// every other panic is reported as usual.
fn quiet_chaos_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&CHAOS_PANIC) {
                report(info);
            }
        }));
    });
}

const CHAOS_PANIC: &str = "the custom provider's chaos panic";

fn seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn callers() -> usize {
    std::env::var("SOAK_CALLERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

/// A small xorshift generator: the soak's randomness, seeded per run.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        Self((nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What the callers saw.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    errors: AtomicU64,
    expired: AtomicU64,
    late: AtomicU64,
    panics: AtomicU64,
    slowest_ms: AtomicU64,
}

impl Tally {
    /// A call asked at `asked` (wall clock) that took `took`. A credential
    /// must be valid when asked for: one that expires while the caller's
    /// thread waits to be scheduled again is not counted.
    fn record(
        &self,
        result: Result<Arc<Credentials>, Error>,
        asked: OffsetDateTime,
        took: Duration,
    ) {
        match result {
            Ok(credentials) => {
                self.served.fetch_add(1, Ordering::Relaxed);
                let expiration = credentials
                    .expiration()
                    .expect("session credentials expire");
                if expiration <= asked {
                    self.expired.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if took > DEADLINE {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

/// One soak: the callers' tally, the fault injector and the memory
/// samples, from its start to its end.
struct Chaos {
    tally: Arc<Tally>,
    started: Instant,
    end: Instant,
    stop: Arc<AtomicBool>,
    injector: thread::JoinHandle<()>,
    memory: thread::JoinHandle<(u64, u64)>,
}

impl Chaos {
    /// Starts injecting faults into `sts` for [`seconds`].
    fn start(sts: &Arc<LoopbackSts>) -> Self {
        let started = Instant::now();
        let end = started + Duration::from_secs(seconds());
        let stop = Arc::new(AtomicBool::new(false));
        Self {
            tally: Arc::new(Tally::default()),
            started,
            end,
            injector: chaos(sts.clone(), stop.clone()),
            stop,
            memory: memory_samples(started, end),
        }
    }

    /// Stops the faults once every caller has returned, then reports.
    fn finish(self, adapter: &str, sts: &LoopbackSts, sts_metrics: Metrics) {
        self.stop.store(true, Ordering::Relaxed);
        self.injector.join().expect("the injector");
        let elapsed = self.started.elapsed();
        let memory = self.memory.join().expect("the sampler");
        report(adapter, &self.tally, sts, sts_metrics, elapsed, memory);
    }
}

/// Injects a random fault, or a burst of them, every 0.5 to 3 s until
/// `stop`, once the last one was taken: with a refresh every two seconds
/// or so, about half of them meet a fault.
fn chaos(sts: Arc<LoopbackSts>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut rng = Rng::seeded(1);
        while !stop.load(Ordering::Relaxed) {
            let (fault, times) = match rng.below(8) {
                0 => (Fault::InternalError, 1),
                1 => (Fault::Unavailable, 2),
                2 => (Fault::Throttling, 3),
                3 => (Fault::Slow(SLOW), 1),
                4 => (Fault::Reset, 1),
                5 => (Fault::Truncated, 1),
                6 => (Fault::Denied, 1 + rng.below(3) as usize),
                _ => (
                    Fault::DateAhead(Duration::from_secs(30 + rng.below(270))),
                    1,
                ),
            };
            if sts.pending_faults() == 0 {
                sts.inject(fault, times);
            }
            thread::sleep(Duration::from_millis(500 + rng.below(2500)));
        }
    })
}

/// What a custom provider answers: mostly credentials, sometimes a panic
/// or an expired credential.
fn custom_answer(rng: &mut Rng) -> refresh_session_core::custom::CustomCredentials {
    let now = OffsetDateTime::now_utc();
    let expiration = match rng.below(10) {
        0 => std::panic::panic_any(CHAOS_PANIC),
        1 => now - Duration::from_secs(1),
        _ => now + LIFETIME,
    };
    refresh_session_core::custom::CustomCredentials::new()
        .access_key_id(format!("ASIACUSTOM{}", rng.below(1000)))
        .secret_access_key("secret")
        .expiration(expiration)
}

/// Resident memory a quarter into the run (every caller running) and just
/// before its end: a leak shows as growth between the two.
fn memory_samples(started: Instant, end: Instant) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        thread::sleep((end - started) / 4);
        let early = resident_kib();
        thread::sleep(end.saturating_duration_since(Instant::now() + Duration::from_millis(500)));
        (early, resident_kib())
    })
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Prints the figures and checks the soak's invariants.
fn report(
    adapter: &str,
    tally: &Tally,
    sts: &LoopbackSts,
    sts_metrics: Metrics,
    elapsed: Duration,
    memory: (u64, u64),
) {
    let attempts = sts_metrics.refreshes + sts_metrics.failed_refreshes;
    let calls = sts.assume_role_calls();
    let bound = 2 + elapsed.as_secs();
    println!(
        "soak {adapter}: {} s, {} callers: {} calls served, {} errors, {} expired handed out, slowest {} ms, {} past the {} s deadline, {} panics escaped; STS: {attempts} refresh attempts (bound {bound}), {calls} calls (at most {MAX_ATTEMPTS} an attempt), {} in flight at most; resident memory {} KiB -> {} KiB",
        elapsed.as_secs(),
        callers(),
        tally.served.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
        tally.expired.load(Ordering::Relaxed),
        tally.slowest_ms.load(Ordering::Relaxed),
        tally.late.load(Ordering::Relaxed),
        DEADLINE.as_secs(),
        tally.panics.load(Ordering::Relaxed),
        sts.most_in_flight(),
        memory.0,
        memory.1,
    );
    assert!(tally.served.load(Ordering::Relaxed) > 0, "nothing served");
    assert_eq!(
        tally.expired.load(Ordering::Relaxed),
        0,
        "expired credentials handed out"
    );
    assert_eq!(
        tally.late.load(Ordering::Relaxed),
        0,
        "calls past their deadline"
    );
    assert_eq!(tally.panics.load(Ordering::Relaxed), 0, "panics escaped");
    assert!(
        attempts <= bound,
        "{attempts} refresh attempts in {elapsed:?}"
    );
    assert!(
        calls <= attempts * u64::from(MAX_ATTEMPTS),
        "{calls} STS calls"
    );
    assert_eq!(sts.most_in_flight(), 1, "one STS call in flight at most");
    assert!(
        memory.1 <= memory.0 + memory.0 / 4 + 8 * 1024,
        "memory grew: {memory:?}"
    );
}

fn loopback_sts() -> Arc<LoopbackSts> {
    Arc::new(LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::ZERO,
    }))
}

fn sts_options<B: SessionOptions>(builder: B, sts: &LoopbackSts) -> B {
    builder
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDSOAK", "soak-secret", None, None))
        .read_timeout(READ_TIMEOUT)
        .max_attempts(MAX_ATTEMPTS)
        .retry_deadline(RETRY_DEADLINE)
}

#[test]
fn blocking_sessions_hold_under_chaos() {
    use refresh_session_blocking::RefreshableSession;

    quiet_chaos_panics();
    let sts = loopback_sts();
    let session = sts_options(RefreshableSession::sts(AssumeRole::new(ROLE)), &sts)
        .build()
        .expect("valid");
    let custom = {
        let rng = std::sync::Mutex::new(Rng::seeded(2));
        RefreshableSession::custom(move || {
            let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
            Ok(custom_answer(&mut rng))
        })
        .build()
        .expect("valid")
    };
    let chaos = Chaos::start(&sts);
    let (tally, end) = (chaos.tally.clone(), chaos.end);
    let (done, finished) = mpsc::channel();
    for n in 0..callers() {
        let (session, custom, tally, done) =
            (session.clone(), custom.clone(), tally.clone(), done.clone());
        thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut rng = Rng::seeded(100 + n as u64);
                while Instant::now() < end {
                    let which = if rng.below(2) == 0 { &session } else { &custom };
                    let (asked, wall) = (Instant::now(), OffsetDateTime::now_utc());
                    match catch_unwind(AssertUnwindSafe(|| which.credentials())) {
                        Ok(result) => tally.record(result, wall, asked.elapsed()),
                        Err(_) => {
                            tally.panics.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    thread::sleep(Duration::from_millis(5 + rng.below(20)));
                }
                let _ = done.send(());
            })
            .expect("a caller thread");
    }
    drop(done);
    for _ in 0..callers() {
        finished
            .recv_timeout(DEADLINE + Duration::from_secs(seconds()))
            .expect("every caller returned");
    }
    chaos.finish("blocking", &sts, session.metrics());
}

#[test]
fn tokio_sessions_hold_under_chaos() {
    use refresh_session_tokio::RefreshableSession;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    quiet_chaos_panics();
    let sts = loopback_sts();
    let (session, custom) = runtime.block_on(async {
        let session = sts_options(RefreshableSession::sts(AssumeRole::new(ROLE)), &sts)
            .build()
            .await
            .expect("valid");
        let rng = Arc::new(std::sync::Mutex::new(Rng::seeded(3)));
        let custom = RefreshableSession::custom(move || {
            let rng = rng.clone();
            async move {
                let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
                Ok(custom_answer(&mut rng))
            }
        })
        .build()
        .await
        .expect("valid");
        (session, custom)
    });
    let chaos = Chaos::start(&sts);
    let (tally, end) = (chaos.tally.clone(), chaos.end);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..callers())
            .map(|n| {
                let (session, custom, tally) = (session.clone(), custom.clone(), tally.clone());
                tokio::spawn(async move {
                    let mut rng = Rng::seeded(10_000 + n as u64);
                    while Instant::now() < end {
                        let which = if rng.below(2) == 0 { &session } else { &custom };
                        let (asked, wall) = (Instant::now(), OffsetDateTime::now_utc());
                        match tokio::time::timeout(DEADLINE, which.credentials()).await {
                            Ok(result) => tally.record(result, wall, asked.elapsed()),
                            Err(_) => {
                                tally.late.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5 + rng.below(20))).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            let bounded =
                tokio::time::timeout(DEADLINE + Duration::from_secs(seconds()), task).await;
            match bounded.expect("every caller returned") {
                Ok(()) => {}
                Err(_) => {
                    tally.panics.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    chaos.finish("tokio", &sts, session.metrics());
}
