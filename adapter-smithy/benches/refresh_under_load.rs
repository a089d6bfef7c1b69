//! Callers across refreshes, against a loopback STS that takes 500 ms to
//! answer: our async session against the AWS SDK's lazy identity cache in
//! front of an `AssumeRole` call made with `aws-sdk-sts` (what
//! `aws_config`'s assume-role provider does), both refreshing at half the
//! credential's lifetime. Reports each side's caller latency (p50, p99,
//! max; overall and while an `AssumeRole` is in flight), counts the
//! upstream calls, and draws the latency over time into
//! `docs/refresh_under_load.svg`.
//!
//! `cargo bench -p refresh-session-smithy --bench refresh_under_load`

mod support;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::BehaviorVersion;
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime_api::client::identity::{
    Identity, IdentityFuture, ResolveCachedIdentity, ResolveIdentity, SharedIdentityCache,
    SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SdkConfig;
use aws_types::region::Region;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use refresh_session_tokio::prelude::*;
use support::sdk_components;
use time::OffsetDateTime;

const LIFETIME: Duration = Duration::from_secs(4);
const STS_DELAY: Duration = Duration::from_millis(500);
/// Three refreshes each.
const RUN: Duration = Duration::from_millis(13_000);
const CALLERS: usize = 4;
const ROLE: &str = "arn:aws:iam::123456789012:role/bench";

/// One call: when it started (from the run's start) and how long it took.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    latency: Duration,
}

struct Outcome {
    name: &'static str,
    samples: Vec<Sample>,
    /// When `AssumeRole` calls were in flight, from the run's start.
    in_flight: Vec<(Duration, Duration)>,
    upstream_calls: u64,
}

fn sts_server() -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime: LIFETIME,
        delay: STS_DELAY,
    })
}

/// `CALLERS` tasks calling `get` in a loop for `RUN`, yielding between
/// calls as a service does other work.
async fn drive<F, Fut>(get: F) -> (Instant, Vec<Sample>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let get = get.clone();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(1 << 20);
                while start.elapsed() < RUN {
                    let began = Instant::now();
                    get().await;
                    samples.push(Sample {
                        at: began - start,
                        latency: began.elapsed(),
                    });
                    tokio::task::yield_now().await;
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("a caller"));
    }
    samples.sort_by_key(|s| s.at);
    (start, samples)
}

/// Each `AssumeRole`'s flight, from when the server received it.
fn flights(sts: &LoopbackSts, start: Instant) -> Vec<(Duration, Duration)> {
    let wall_start = OffsetDateTime::now_utc() - start.elapsed();
    sts.issued()
        .iter()
        .filter_map(|issued| {
            let from = Duration::try_from(issued.issued_at - wall_start).ok()?;
            Some((from, from + STS_DELAY))
        })
        .collect()
}

async fn ours() -> Outcome {
    let sts = sts_server();
    let session = RefreshableSession::sts(AssumeRole::new(ROLE).role_session_name("ours"))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(Credentials::new("AKIDBENCH", "bench-secret", None, None))
        .defer_refresh(false)
        .build()
        .await
        .expect("a session");
    let (start, samples) = drive(move || {
        let session = session.clone();
        async move {
            session.credentials().await.expect("credentials");
        }
    })
    .await;
    Outcome {
        name: "refresh-session (tokio, eager)",
        in_flight: flights(&sts, start),
        upstream_calls: sts.assume_role_calls(),
        samples,
    }
}

/// `AssumeRole` through `aws-sdk-sts`, as aws-config's provider calls it.
#[derive(Debug)]
struct SdkAssumeRole {
    client: aws_sdk_sts::Client,
}

impl ResolveIdentity for SdkAssumeRole {
    fn resolve_identity<'a>(
        &'a self,
        _: &'a RuntimeComponents,
        _: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        IdentityFuture::new(async move {
            let answer = self
                .client
                .assume_role()
                .role_arn(ROLE)
                .role_session_name("sdk")
                .send()
                .await?;
            let credentials = answer.credentials().ok_or("no credentials")?;
            let expiry = SystemTime::try_from(*credentials.expiration())?;
            let sdk = aws_credential_types::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                Some(expiry),
                "bench",
            );
            Ok(Identity::new(sdk, Some(expiry)))
        })
    }
}

async fn sdk_lazy_cache() -> Outcome {
    let sts = sts_server();
    let config = SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(sts.url())
        .credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                "AKIDBENCH",
                "bench-secret",
                None,
                None,
                "bench",
            ),
        ))
        .behavior_version(BehaviorVersion::latest())
        .build();
    // Refresh at half the lifetime, as the session does.
    let cache: SharedIdentityCache = IdentityCache::lazy().buffer_time(LIFETIME / 2).build();
    let resolver = SharedIdentityResolver::new(SdkAssumeRole {
        client: aws_sdk_sts::Client::new(&config),
    });
    let components = Arc::new(sdk_components());
    let bag = Arc::new(ConfigBag::base());
    let (start, samples) = drive(move || {
        let (cache, resolver, components, bag) = (
            cache.clone(),
            resolver.clone(),
            components.clone(),
            bag.clone(),
        );
        async move {
            cache
                .resolve_cached_identity(resolver, &components, &bag)
                .await
                .expect("an identity");
        }
    })
    .await;
    Outcome {
        name: "aws-smithy IdentityCache::lazy + aws-sdk-sts AssumeRole",
        in_flight: flights(&sts, start),
        upstream_calls: sts.assume_role_calls(),
        samples,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn show(d: Duration) -> String {
    if d < Duration::from_micros(10) {
        format!("{} ns", d.as_nanos())
    } else if d < Duration::from_millis(10) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    }
}

fn row(outcome: &Outcome, during_refresh: bool) -> String {
    let mut latencies: Vec<Duration> = outcome
        .samples
        .iter()
        .filter(|s| {
            !during_refresh
                || outcome
                    .in_flight
                    .iter()
                    .any(|(from, to)| s.at >= *from && s.at < *to)
        })
        .map(|s| s.latency)
        .collect();
    latencies.sort();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        outcome.name,
        if during_refresh {
            "while AssumeRole is in flight"
        } else {
            "whole run"
        },
        latencies.len(),
        show(percentile(&latencies, 0.5)),
        show(percentile(&latencies, 0.99)),
        show(latencies.last().copied().unwrap_or_default()),
        outcome.upstream_calls,
    )
}

/// The slowest call in each 20 ms of the run, per contender, on a log
/// scale from 10 ns to 1 s.
fn plot(outcomes: &[Outcome]) -> String {
    const WIDTH: f64 = 900.0;
    const HEIGHT: f64 = 360.0;
    const LEFT: f64 = 70.0;
    const BUCKET: Duration = Duration::from_millis(20);
    let x = |at: Duration| LEFT + at.as_secs_f64() / RUN.as_secs_f64() * (WIDTH - LEFT - 20.0);
    let y = |latency: Duration| {
        let decades = (latency.as_secs_f64().max(1e-8) / 1e-8).log10(); // 10 ns = 0
        HEIGHT - 40.0 - decades / 8.0 * (HEIGHT - 90.0)
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"18\">Slowest caller per 20 ms across refreshes (STS answers in 500 ms; {CALLERS} callers; shaded: AssumeRole in flight)</text>\n"
    );
    for (decade, label) in [
        "10 ns", "100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s",
    ]
    .iter()
    .enumerate()
    {
        let at = y(Duration::from_nanos(10u64.pow(decade as u32 + 1)));
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#ddd\"/><text x=\"8\" y=\"{:.1}\">{label}</text>",
            WIDTH - 20.0,
            at + 4.0
        );
    }
    for second in 0..=RUN.as_secs() {
        let at = x(Duration::from_secs(second));
        let _ = writeln!(
            svg,
            "<text x=\"{at:.1}\" y=\"{}\" text-anchor=\"middle\">{second} s</text>",
            HEIGHT - 20.0
        );
    }
    for (outcome, colour) in outcomes.iter().zip(["#1f77b4", "#d62728"]) {
        for (from, to) in &outcome.in_flight {
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"50\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\" opacity=\"0.08\"/>",
                x(*from),
                x(*to) - x(*from),
                HEIGHT - 90.0
            );
        }
        let mut points = String::new();
        let buckets = (RUN.as_millis() / BUCKET.as_millis()) as usize;
        for bucket in 0..buckets {
            let from = BUCKET * bucket as u32;
            let slowest = outcome
                .samples
                .iter()
                .filter(|s| s.at >= from && s.at < from + BUCKET)
                .map(|s| s.latency)
                .max();
            if let Some(slowest) = slowest {
                let _ = write!(points, "{:.1},{:.1} ", x(from), y(slowest));
            }
        }
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{points}\"/>"
        );
    }
    for (i, (outcome, colour)) in outcomes.iter().zip(["#1f77b4", "#d62728"]).enumerate() {
        let at = LEFT + 420.0 * i as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{at}\" y=\"32\" width=\"12\" height=\"3\" fill=\"{colour}\"/><text x=\"{}\" y=\"37\">{}</text>",
            at + 16.0,
            outcome.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this harness has none.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let outcomes = [runtime.block_on(ours()), runtime.block_on(sdk_lazy_cache())];
    println!("| contender | calls | n | p50 | p99 | max | AssumeRole calls |");
    println!("|---|---|---|---|---|---|---|");
    for outcome in &outcomes {
        println!("{}", row(outcome, false));
        println!("{}", row(outcome, true));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/refresh_under_load.svg"
    );
    std::fs::write(path, plot(&outcomes)).expect("the plot is written");
    println!("plot: docs/refresh_under_load.svg");
}
