//! The engine driven by an arbitrary sequence of callers, answers, failures
//! and clock steps, with its invariants asserted after every step: a
//! credential handed out is valid on AWS's clock; at most one fetch is in
//! flight; nothing panics, not even with durations, expirations and `Date`
//! headers at the ends of `time`'s range.
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
    lifetime: Span,
    advisory: Span,
    mandatory: Span,
    retry_deadline: Span,
    max_attempts: u8,
    server_clock: ServerClock,
    checks_signing_time: bool,
    near_the_end_of_time: bool,
    seed: u64,
}

/// A duration: a plausible one, or one at the end of the range.
#[derive(Debug, Arbitrary)]
enum Span {
    Secs(u16),
    Max,
    Secs64(u64),
}

impl Span {
    fn duration(&self) -> Duration {
        match self {
            Span::Secs(secs) => Duration::from_secs(u64::from(*secs)),
            Span::Max => Duration::MAX,
            Span::Secs64(secs) => Duration::from_secs(*secs),
        }
    }
}

/// AWS's clock, as its `Date` headers tell it.
#[derive(Debug, Arbitrary)]
enum ServerClock {
    Off(i16),
    EndOfTime,
    StartOfTime,
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
    let lifetime = setup.lifetime.duration().max(Duration::from_secs(1));
    let advisory = setup.advisory.duration();
    let mandatory = setup.mandatory.duration().min(advisory);
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
        .max_attempts(u32::from(setup.max_attempts % 5).max(1))
        .retry_deadline(setup.retry_deadline.duration());
    let start = match setup.near_the_end_of_time {
        true => datetime!(9999-12-31 23:00 UTC),
        false => datetime!(2030-01-01 0:00 UTC),
    };
    let Ok(mut sim) = Sim::new(config, start, setup.seed) else {
        return;
    };
    if !setup.custom {
        let offset = match setup.server_clock {
            ServerClock::Off(secs) => time::Duration::seconds(i64::from(secs)),
            ServerClock::EndOfTime => time::Duration::MAX,
            ServerClock::StartOfTime => time::Duration::MIN,
        };
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
        let fetches: HashSet<FetchId> = sim.pending_work().map(Work::fetch).collect();
        assert!(fetches.len() <= 1, "two fetches in flight: {fetches:?}");
    }
});
