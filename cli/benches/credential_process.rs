//! `refresh-session credential-process` answered from its disk cache, timed
//! as a whole process (spawn to exit), against a Python process doing the
//! same job with boto3-refresh-session, which keeps no cache between
//! processes and so calls AssumeRole every time. Both against the
//! loopback STS, which answers at once.
//!
//! `cargo bench -p refresh-session-cli --bench credential_process`

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use refresh_session_tests::moto::python;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};

const BINARY: &str = env!("CARGO_BIN_EXE_refresh-session");
const ROLE: &str = "arn:aws:iam::123456789012:role/bench";
const RUNS: usize = 200;
const PYTHON_RUNS: usize = 20;

/// Runs `program` `runs` times; the wall time of each run, sorted.
fn time_runs(runs: usize, mut command: impl FnMut() -> Command) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let output = command().output().expect("the program runs");
            let took = started.elapsed();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(output.stdout.starts_with(b"{"), "credential_process JSON");
            took
        })
        .collect();
    times.sort();
    times
}

fn at(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    });
    let home = tempfile::tempdir().expect("a temp dir");
    let root = home.path().display().to_string();
    let env = BTreeMap::from([
        ("HOME".to_owned(), root.clone()),
        ("AWS_CONFIG_FILE".to_owned(), format!("{root}/config")),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            format!("{root}/credentials"),
        ),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "AKIDBENCH".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            "bench-secret".to_owned(),
        ),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_STS".to_owned(), sts.url()),
        (
            "REFRESH_SESSION_CACHE_DIR".to_owned(),
            format!("{root}/cache"),
        ),
    ]);
    let ours = || {
        let mut command = Command::new(BINARY);
        command.env_clear().envs(&env).args([
            "credential-process",
            "--role-arn",
            ROLE,
            "--role-session-name",
            "cli",
        ]);
        command
    };
    // The first run fills the cache; the timed ones read it.
    time_runs(1, ours);
    let cached = time_runs(RUNS, ours);
    assert_eq!(
        sts.assume_role_calls(),
        1,
        "every timed run was a cache hit"
    );

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/python/brs_credential_process.py"
    );
    let theirs = time_runs(PYTHON_RUNS, || {
        let mut command = Command::new(python());
        command.env_clear().envs(&env).args([script, ROLE]);
        command
    });

    println!("| process | runs | median | p90 | AssumeRole calls per run |");
    println!("|---|---|---|---|---|");
    println!(
        "| `refresh-session credential-process` (disk cache) | {RUNS} | {} | {} | 0 |",
        ms(at(&cached, 0.5)),
        ms(at(&cached, 0.9))
    );
    println!(
        "| Python + boto3-refresh-session | {PYTHON_RUNS} | {} | {} | 1 |",
        ms(at(&theirs, 0.5)),
        ms(at(&theirs, 0.9))
    );
    println!(
        "ratio of medians: {:.0}x",
        at(&theirs, 0.5).as_secs_f64() / at(&cached, 0.5).as_secs_f64()
    );
}
