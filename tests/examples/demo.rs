//! `scripts/demo`: the main job end to end on loopback.
//!
//! 1. moto's STS, which checks every SigV4 signature: assume a role with an
//!    MFA code from a provider, and ask STS who we are.
//! 2. The project's loopback STS, issuing credentials that live six
//!    seconds: an eager session serves eight busy threads across several
//!    expiries, refreshing in the background so that nobody waits.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use refresh_session_tests::moto::Moto;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;

const LIFETIME: Duration = Duration::from_secs(6);
const RUN_FOR: Duration = Duration::from_secs(20);
const THREADS: usize = 8;

fn main() -> Result<(), Box<dyn Error>> {
    assume_a_role_with_mfa()?;
    keep_busy_threads_supplied()?;
    Ok(())
}

fn assume_a_role_with_mfa() -> Result<(), Box<dyn Error>> {
    println!("== 1. moto's STS on loopback, checking every SigV4 signature");
    let moto = Moto::start();
    println!("   moto at {}, IAM user {}", moto.url(), moto.user_arn);
    let session = RefreshableSession::sts(
        AssumeRole::new(&moto.role_arn)
            .role_session_name("demo")
            .duration(Duration::from_secs(900))
            .serial_number("arn:aws:iam::123456789012:mfa/demo"),
    )
    .region("us-east-1")
    .endpoint_url(moto.url())
    .source_credentials(moto.user_credentials())
    .mfa_token_provider(|serial| {
        println!("   MFA code requested for {serial}");
        Ok("123456".to_owned())
    })
    .build()?;
    let credentials = session.credentials()?;
    let left = credentials
        .expiration()
        .map(|e| e - OffsetDateTime::now_utc());
    println!(
        "   assumed: {} (expires in {})",
        credentials.access_key_id(),
        left.map_or("never".into(), |d| format!("{:.0} s", d.as_seconds_f64()))
    );
    println!("   whoami:  {}", session.whoami()?.arn);
    Ok(())
}

fn keep_busy_threads_supplied() -> Result<(), Box<dyn Error>> {
    println!(
        "\n== 2. loopback STS issuing {}-second credentials (answers take 200 ms); an eager session, {THREADS} threads calling credentials() for {} s",
        LIFETIME.as_secs(),
        RUN_FOR.as_secs()
    );
    let sts = LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: Duration::from_millis(200),
    });
    let session = RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/demo"))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDDEMO", "demo-secret", None, None))
        .advisory_timeout(Duration::from_secs(2))
        .mandatory_timeout(Duration::from_secs(1))
        .defer_refresh(false)
        .build()?;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let expired = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (session, stop, calls, expired) = (
                session.clone(),
                stop.clone(),
                calls.clone(),
                expired.clone(),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let asked_at = OffsetDateTime::now_utc();
                    match session.credentials() {
                        Ok(c) if c.expiration().is_some_and(|e| e > asked_at) => {}
                        _ => {
                            expired.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut shown = 0;
    while started.elapsed() < RUN_FOR {
        let metrics = session.metrics();
        if metrics.refreshes > shown {
            shown = metrics.refreshes;
            let credentials = session.credentials()?;
            let left = credentials
                .expiration()
                .map_or(0.0, |e| (e - OffsetDateTime::now_utc()).as_seconds_f64());
            println!(
                "   t={:5.1} s  credential #{shown}: {} valid for {left:.1} s  ({} calls so far, {} waited)",
                started.elapsed().as_secs_f64(),
                credentials.access_key_id(),
                calls.load(Ordering::Relaxed),
                metrics.waits,
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "a worker thread panicked")?;
    }
    let metrics = session.metrics();
    println!(
        "   done: {} calls, {} STS calls, {} refreshes, {} callers waited, {} expired or failed credentials",
        calls.load(Ordering::Relaxed),
        sts.assume_role_calls(),
        metrics.refreshes,
        metrics.waits,
        expired.load(Ordering::Relaxed)
    );
    Ok(())
}
