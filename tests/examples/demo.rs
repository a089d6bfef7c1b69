//! `scripts/demo`: the main job end to end on loopback.
//!
//! 1. moto's STS and S3, which check every SigV4 signature: the
//!    `refresh-session` CLI assumes a role with an MFA code from a command,
//!    for six seconds at a time, and `exec`s a boto3 program that keeps
//!    calling STS and S3 through several refreshes; boto3 finds the
//!    credentials on its own, at the CLI's loopback credential endpoint.
//! 2. The project's loopback STS, issuing credentials that live six
//!    seconds: an eager session serves eight busy threads across several
//!    expiries, refreshing in the background so that nobody waits.
//! 3. The loopback STS again, now assuming roles only with MFA: the CLI's
//!    `credential-process` with `--mfa-session` serves two roles, run after
//!    run across their expiries, with one MFA code.
//!
//! `REFRESH_SESSION_BIN` is the CLI binary (`scripts/demo` builds it).

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use refresh_session_tests::moto::{Moto, python};
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;

const LIFETIME: Duration = Duration::from_secs(6);
const RUN_FOR: Duration = Duration::from_secs(20);
const THREADS: usize = 8;

fn main() -> Result<(), Box<dyn Error>> {
    exec_a_boto3_program()?;
    keep_busy_threads_supplied()?;
    one_code_for_two_roles()?;
    Ok(())
}

fn cli() -> Result<String, Box<dyn Error>> {
    Ok(std::env::var("REFRESH_SESSION_BIN")
        .map_err(|_| "set REFRESH_SESSION_BIN to the refresh-session binary")?)
}

fn exec_a_boto3_program() -> Result<(), Box<dyn Error>> {
    println!("== 1. moto's STS and S3 on loopback, checking every SigV4 signature");
    let moto = Moto::start();
    println!("   moto at {}, IAM user {}", moto.url(), moto.user_arn);
    let cli = cli()?;
    let child = concat!(env!("CARGO_MANIFEST_DIR"), "/python/exec_child.py");
    let mut command = Command::new(&cli);
    command
        .args([
            "exec",
            "--role-arn",
            &moto.role_arn,
            "--role-session-name",
            "demo",
        ])
        .args(["--duration-seconds", &LIFETIME.as_secs().to_string()])
        .args(["--serial-number", "arn:aws:iam::123456789012:mfa/demo"])
        .args([
            "--mfa-command",
            "echo '   MFA code asked for: 123456' >&2; echo 123456",
        ])
        .args(["--region", "us-east-1", "--endpoint-url", moto.url(), "--"])
        .arg(python())
        .args([child, moto.url(), &RUN_FOR.as_secs().to_string()])
        .env("AWS_ACCESS_KEY_ID", &moto.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_access_key);
    println!(
        "   $ refresh-session exec --role-arn {} --duration-seconds {} --serial-number ... --mfa-command ... -- python exec_child.py",
        moto.role_arn,
        LIFETIME.as_secs()
    );
    let status = command.status()?;
    if !status.success() {
        return Err(format!("refresh-session exec ended with {status}").into());
    }
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

fn one_code_for_two_roles() -> Result<(), Box<dyn Error>> {
    const ROLE_LIFETIME: Duration = Duration::from_secs(3);
    println!(
        "\n== 3. loopback STS that assumes roles only with MFA, issuing {}-second role credentials; credential-process for two roles with --mfa-session 12h",
        ROLE_LIFETIME.as_secs()
    );
    let sts = LoopbackSts::start(StsOptions {
        lifetime: ROLE_LIFETIME,
        delay: Duration::ZERO,
    });
    sts.require_mfa();
    let cache = tempfile::tempdir()?;
    let cli = cli()?;
    let roles = ["deploy", "read-only"].map(|r| format!("arn:aws:iam::123456789012:role/{r}"));
    for round in 1..=3 {
        for role in &roles {
            let output = Command::new(&cli)
                .args(["credential-process", "--role-arn", role])
                .args(["--serial-number", "arn:aws:iam::123456789012:mfa/demo"])
                .args(["--mfa-session", "12h"])
                .args([
                    "--mfa-command",
                    "echo '   MFA code asked for: 123456' >&2; echo 123456",
                ])
                .args(["--region", "us-east-1", "--endpoint-url", &sts.url()])
                .arg("--cache-dir")
                .arg(cache.path().join("refresh-session"))
                .env("AWS_ACCESS_KEY_ID", "AKIADEMO")
                .env("AWS_SECRET_ACCESS_KEY", "demo-secret")
                .output()?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).into_owned().into());
            }
            let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            println!(
                "   round {round}, {role}: {} ({})",
                json["AccessKeyId"].as_str().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr)
                    .trim()
                    .replace('\n', "; ")
            );
        }
        thread::sleep(ROLE_LIFETIME);
    }
    println!(
        "   done: {} AssumeRole calls, {} MFA session (GetSessionToken) for all of them",
        sts.assume_role_calls(),
        sts.mfa_sessions().len()
    );
    Ok(())
}
