//! Heap per fleet member: a thousand roles of a `SessionFleet`, each with
//! its credential fetched from the loopback STS, measured by dhat's
//! allocator after one member has built the shared parts (the HTTP client,
//! its connection). Live bytes, not a process's resident size: what a
//! member costs, whatever the allocator rounds it to. The STS runs in a
//! child process (this program, started again), so that what it records
//! of each request is not counted.
//!
//! `cargo bench -p refresh-session-tests --bench fleet_memory`

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{FleetKey, SessionFleet};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const MEMBERS: usize = 1000;

fn key(i: usize) -> FleetKey {
    FleetKey::new(format!("arn:aws:iam::{:012}:role/worker", 100_000 + i)).session_name("fleet")
}

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// Set in the child that serves STS.
const SERVE_STS: &str = "FLEET_MEMORY_SERVE_STS";

fn main() {
    if std::env::var_os(SERVE_STS).is_some() {
        return serve_sts();
    }
    let (mut sts, url) = start_sts();
    measure(&url);
    // Closing its stdin stops the child; kill it if it has not.
    drop(sts.stdin.take());
    if !matches!(sts.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(200));
        let _ = sts.kill();
    }
    let _ = sts.wait();
}

/// The child: a loopback STS on 127.0.0.1 until its stdin closes.
fn serve_sts() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    });
    println!("{}", sts.url());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// This program again, serving STS; and the URL it printed.
fn start_sts() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this program"))
        .env(SERVE_STS, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the STS process");
    let mut url = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout).read_line(&mut url).expect("its URL");
    (child, url.trim().to_owned())
}

fn measure(sts_url: &str) {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let fleet = SessionFleet::builder()
            .region("us-east-1")
            .endpoint_url(sts_url)
            .source_credentials(Credentials::new("AKIDFLEET", "fleet-secret", None, None))
            .build()
            .expect("valid");
        fleet.credentials(&key(0)).await.expect("credentials");
        let before = live_bytes();
        for i in 1..=MEMBERS {
            fleet.credentials(&key(i)).await.expect("credentials");
        }
        let per_member = (live_bytes() - before) / MEMBERS;
        assert_eq!(fleet.len(), MEMBERS + 1);
        println!("| members | heap per member (live bytes) | of which the credential (STS session token) |");
        println!("|---|---|---|");
        let credential = fleet.credentials(&key(1)).await.expect("credentials");
        let token = credential.session_token().map_or(0, |t| t.expose().len());
        println!("| {MEMBERS} | {per_member} B | {token} B token |");
    });
}
