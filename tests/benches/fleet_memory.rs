//! Heap per fleet member: a thousand roles of a `SessionFleet`, each with
//! its credential fetched from the loopback STS, measured by dhat's
//! allocator after one member has built the shared parts (the HTTP client,
//! its connection). Live bytes, not a process's resident size: what a
//! member costs, whatever the allocator rounds it to.
//!
//! `cargo bench -p refresh-session-tests --bench fleet_memory`

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

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    });
    runtime.block_on(async {
        let fleet = SessionFleet::builder()
            .region("us-east-1")
            .endpoint_url(sts.url())
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
