//! Ten thousand sessions over a simulated day, through the engine's own
//! clock: each session is first used at a random moment of the first hour,
//! then every ten seconds, refreshes when a use finds its credential past
//! the fresh window (deferred mode, as fleet members run), and its STS
//! calls go through one pacer at 1.8 times the mean rate the fleet needs,
//! as a fleet's do. Reports the calls against
//! the policy's minimum, the peak calls in any second against the mean,
//! and the callers that had to wait.
//!
//! `cargo bench -p refresh-session-core --bench fleet_day`

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use refresh_session_core::engine::{Access, Engine, FetchId, Input, Request};
use refresh_session_core::harness::{assume_role_response, dated};
use refresh_session_core::pace::Pacer;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Secret, SessionConfig, SessionOptions};
use time::OffsetDateTime;
use time::macros::datetime;

const SESSIONS: usize = 10_000;
const DAY: Duration = Duration::from_secs(86_400);
const LIFETIME: Duration = Duration::from_secs(3600);
/// The default advisory timeout: a credential is fresh for `LIFETIME - ADVISORY`.
const ADVISORY: Duration = Duration::from_secs(900);
const USE_EVERY: Duration = Duration::from_secs(10);
const ROUND_TRIP: Duration = Duration::from_millis(100);
const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A session is used (the first use of its fresh window's end).
    Use(usize),
    /// STS answers a session's call made at `sent` (seconds, nanos).
    Answer(usize, FetchId, (i64, u32)),
}

/// splitmix64: a seeded, dependency-free random source.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bound.mul_f64((z ^ (z >> 31)) as f64 / u64::MAX as f64)
    }
}

struct Fleet {
    engines: Vec<Engine>,
    first_use: Vec<Duration>,
    events: BinaryHeap<Reverse<(OffsetDateTime, Event)>>,
    pacer: Pacer,
    calls: Vec<OffsetDateTime>,
    waits_after_warm_up: usize,
    expired_handed_out: usize,
}

impl Fleet {
    fn new() -> Self {
        let mut random = Random(7);
        let expected_mean = SESSIONS as f64 / (LIFETIME - ADVISORY).as_secs_f64();
        let mut fleet = Self {
            engines: Vec::with_capacity(SESSIONS),
            first_use: Vec::with_capacity(SESSIONS),
            events: BinaryHeap::new(),
            pacer: Pacer::new(1.8 * expected_mean, 1).expect("a valid rate"),
            calls: Vec::new(),
            waits_after_warm_up: 0,
            expired_handed_out: 0,
        };
        for i in 0..SESSIONS {
            let config = SessionConfig::assume_role(
                AssumeRole::new(format!("arn:aws:iam::{:012}:role/worker", 100_000 + i))
                    .role_session_name("fleet"),
            )
            .region("us-east-1")
            .source_credentials(Credentials::new("AKIDFLEET", "secret", None, None));
            let engine = Engine::new(config, &|_| None, START, i as u64)
                .expect("valid")
                .0;
            let first = random.below(Duration::from_secs(3600));
            fleet.engines.push(engine);
            fleet.first_use.push(first);
            fleet.events.push(Reverse((START + first, Event::Use(i))));
        }
        fleet
    }

    fn run(&mut self) {
        while let Some(Reverse((now, event))) = self.events.pop() {
            if now >= START + DAY {
                break;
            }
            match event {
                Event::Use(i) => self.use_session(i, now),
                Event::Answer(i, fetch, sent) => self.answer(i, fetch, sent, now),
            }
        }
    }

    fn use_session(&mut self, i: usize, now: OffsetDateTime) {
        match self.engines[i].poll_access(now, None) {
            Access::Ready(credentials) if credentials.is_expired_at(now) => {
                self.expired_handed_out += 1;
            }
            Access::Pending(_) if now - START >= time::Duration::HOUR => {
                self.waits_after_warm_up += 1;
            }
            _ => {}
        }
        self.send_requests(i, now);
        self.schedule_next_use(i, now);
    }

    fn send_requests(&mut self, i: usize, now: OffsetDateTime) {
        while self.engines[i].poll_event().is_some() {}
        while let Some(request) = self.engines[i].poll_request() {
            if let Request::Transmit { fetch, .. } = request {
                let sent = now + self.pacer.admit(now);
                self.calls.push(sent);
                let at = (sent.unix_timestamp(), sent.nanosecond());
                self.events
                    .push(Reverse((sent + ROUND_TRIP, Event::Answer(i, fetch, at))));
            }
        }
    }

    fn answer(&mut self, i: usize, fetch: FetchId, sent: (i64, u32), now: OffsetDateTime) {
        let issued = OffsetDateTime::from_unix_timestamp(sent.0).expect("a time")
            + Duration::from_nanos(u64::from(sent.1));
        let credentials = Credentials::new(
            format!("ASIA{i:08}{}", sent.0),
            Secret::new("secret".to_owned()),
            Some(Secret::new("token".to_owned())),
            Some(issued + LIFETIME),
        );
        let response = dated(assume_role_response(&credentials), issued);
        self.engines[i].handle_input(now, Input::Response { fetch, response });
        while self.engines[i].poll_event().is_some() {}
    }

    /// The next use that can change anything: the first, on the session's
    /// ten-second beat, at or after its credential's fresh window ends.
    /// Uses inside the window are hits that change nothing.
    fn schedule_next_use(&mut self, i: usize, now: OffsetDateTime) {
        let stale_at = self.engines[i]
            .snapshot()
            .and_then(|s| s.fresh_until())
            .map_or(now, OffsetDateTime::from);
        let from_first = Duration::try_from(stale_at.max(now) - START)
            .unwrap_or_default()
            .saturating_sub(self.first_use[i]);
        let beats = from_first.as_nanos().div_ceil(USE_EVERY.as_nanos()).max(1);
        let next = START + self.first_use[i] + USE_EVERY * beats as u32;
        self.events
            .push(Reverse((next.max(now + USE_EVERY), Event::Use(i))));
    }
}

fn main() {
    let mut fleet = Fleet::new();
    fleet.run();
    let minimum: u64 = fleet
        .first_use
        .iter()
        .map(|first| {
            (DAY - *first)
                .as_secs()
                .div_ceil((LIFETIME - ADVISORY).as_secs())
        })
        .sum();
    let calls = fleet.calls.len() as u64;
    let mut per_second = std::collections::HashMap::<i64, u32>::new();
    for call in &fleet.calls {
        *per_second.entry(call.unix_timestamp()).or_default() += 1;
    }
    let peak = per_second.values().copied().max().unwrap_or_default();
    let mean = calls as f64 / DAY.as_secs_f64();
    println!(
        "| sessions | simulated | STS calls | policy minimum | calls / minimum | mean calls/s | peak calls/s | peak / mean | callers waiting after the first hour | expired handed out |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {SESSIONS} | 24 h | {calls} | {minimum} | {:.4} | {mean:.2} | {peak} | {:.2} | {} | {} |",
        calls as f64 / minimum as f64,
        f64::from(peak) / mean,
        fleet.waits_after_warm_up,
        fleet.expired_handed_out,
    );
}
