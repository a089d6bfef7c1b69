//! The engine driven by an arbitrary sequence of callers, answers, failures
//! and clock steps, with its invariants asserted after every step: a
//! credential handed out is valid on AWS's clock; at most one fetch is in
//! flight; nothing panics.
#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use refresh_session_core::engine::{Access, FetchId};
use refresh_session_core::harness::{Reply, Sim, Work};
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, SessionConfig, SessionOptions};
use time::macros::datetime;

#[derive(Debug, Arbitrary)]
struct Setup {
    custom: bool,
    defer: bool,
    lifetime_secs: u16,
    advisory_secs: u16,
    mandatory_secs: u16,
    max_attempts: u8,
    server_offset_secs: i16,
    checks_signing_time: bool,
    seed: u64,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Call,
    Recall,
    Advance(u16),
    Answer(u8),
    Timer,
}

fn reply(code: u8, lifetime: Duration) -> Reply {
    match code % 5 {
        0 | 1 => Reply::Credentials(lifetime),
        2 => Reply::Throttled,
        3 => Reply::Denied,
        _ => Reply::Unreachable,
    }
}

fuzz_target!(|input: (Setup, Vec<Op>)| {
    let (setup, ops) = input;
    let lifetime = Duration::from_secs(u64::from(setup.lifetime_secs.max(1)));
    let advisory = Duration::from_secs(u64::from(setup.advisory_secs));
    let mandatory = Duration::from_secs(u64::from(setup.mandatory_secs)).min(advisory);
    let config = if setup.custom {
        SessionConfig::custom()
    } else {
        SessionConfig::assume_role(AssumeRole::new("arn:aws:iam::123456789012:role/fuzz"))
            .region("us-east-1")
            .source_credentials(Credentials::new("AKIDFUZZ", "secret", None, None))
    };
    let config = config
        .defer_refresh(setup.defer)
        .advisory_timeout(advisory)
        .mandatory_timeout(mandatory)
        .max_attempts(u32::from(setup.max_attempts % 5).max(1));
    let start = datetime!(2030-01-01 0:00 UTC);
    let Ok(mut sim) = Sim::new(config, start, setup.seed) else {
        return;
    };
    if !setup.custom {
        let offset = time::Duration::seconds(i64::from(setup.server_offset_secs));
        sim.set_server_clock(offset, setup.checks_signing_time);
    }
    let mut waiting: Vec<FetchId> = Vec::new();
    if !setup.defer {
        waiting.push(sim.prefetch());
    }
    for op in ops.into_iter().take(256) {
        let answers = match op {
            Op::Call => vec![sim.call()],
            Op::Recall => waiting.drain(..).map(|id| sim.recall(id)).collect(),
            Op::Advance(ms) => {
                sim.advance(Duration::from_millis(u64::from(ms)));
                Vec::new()
            }
            Op::Answer(code) => {
                sim.answer(reply(code, lifetime));
                Vec::new()
            }
            Op::Timer => {
                sim.step_to_timeout(Duration::from_secs(3600));
                Vec::new()
            }
        };
        for access in answers {
            match access {
                Access::Ready(credentials) => {
                    let expiration = credentials.expiration().expect("issued credentials expire");
                    assert!(
                        expiration > sim.server_now(),
                        "handed out an expired credential"
                    );
                }
                Access::Pending(id) => waiting.push(id),
                Access::Failed(_) => {}
            }
        }
        let fetches: HashSet<FetchId> = sim
            .pending_work()
            .map(|work| match work {
                Work::Transmit(id, _)
                | Work::MfaToken(id)
                | Work::Provider(id)
                | Work::Source(id) => *id,
            })
            .collect();
        assert!(fetches.len() <= 1, "two fetches in flight: {fetches:?}");
    }
});
