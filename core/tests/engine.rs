//! The engine's refresh semantics, driven over the harness's virtual clock.

use std::time::Duration;

use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::engine::{Access, Engine, Event, Input, Request};
use refresh_session_core::error::ErrorCode;
use refresh_session_core::harness::{MFA_CODE, Reply, Sim, Work};
use refresh_session_core::mfa::MfaError;
use refresh_session_core::rejection::Rejection;
use refresh_session_core::source::SourceCredentials;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, Error, SessionConfig, SessionOptions};
use time::OffsetDateTime;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const ROLE: &str = "arn:aws:iam::123456789012:role/app";
const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sts() -> SessionConfig {
    SessionConfig::assume_role(AssumeRole::new(ROLE).role_session_name("test"))
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "source-secret", None, None))
}

fn sim(config: SessionConfig) -> Sim {
    Sim::new(config, START, 7).expect("valid config")
}

fn ready(access: Access) -> std::sync::Arc<Credentials> {
    match access {
        Access::Ready(credentials) => credentials,
        other => panic!("expected credentials, got {other:?}"),
    }
}

/// A session with a one-hour credential fetched at `START`.
fn warmed(config: SessionConfig) -> (Sim, std::sync::Arc<Credentials>) {
    let mut sim = sim(config);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing is cached yet")
    };
    assert!(sim.answer(Reply::Credentials(HOUR)));
    let credentials = ready(sim.recall(fetch));
    (sim, credentials)
}

fn form(work: &Work) -> Vec<(String, String)> {
    match work {
        Work::Transmit(_, request) => form_urlencoded::parse(request.body())
            .into_owned()
            .collect(),
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn fresh_calls_are_served_from_the_cache() {
    let (mut sim, first) = warmed(sts());
    sim.advance(secs(2699));
    for _ in 0..100 {
        assert_eq!(ready(sim.call()), first);
    }
    assert_eq!(sim.pending(), 0);
    assert_eq!(sim.engine().metrics().upstream_calls, 1);
}

#[test]
fn advisory_call_returns_the_cached_credential_and_starts_one_refresh() {
    let (mut sim, first) = warmed(sts());
    sim.advance(secs(2700));
    for _ in 0..10 {
        assert_eq!(ready(sim.call()), first);
    }
    assert_eq!(sim.pending(), 1, "one refresh for ten callers");
    assert!(sim.answer(Reply::Credentials(HOUR)));
    let second = ready(sim.call());
    assert_ne!(second, first);
    assert_eq!(sim.engine().metrics().refreshes, 2);
    assert_eq!(
        sim.engine().metrics().waits,
        1,
        "only the very first caller waited"
    );
}

#[test]
fn advisory_failure_keeps_cached_credentials_and_backs_off() {
    // One attempt per refresh: this is about the backoff between refreshes.
    let (mut sim, first) = warmed(sts().max_attempts(1));
    sim.advance(secs(2700));
    assert_eq!(ready(sim.call()), first);
    assert!(sim.answer(Reply::Throttled));
    // Backing off five to ten minutes: more calls get the cached credential
    // and start nothing, the mandatory window included.
    for _ in 0..50 {
        assert_eq!(ready(sim.call()), first);
    }
    sim.advance(secs(299));
    assert_eq!(ready(sim.call()), first);
    assert_eq!(sim.pending(), 0);
    // After the backoff the next call tries again.
    sim.advance(secs(302));
    assert_eq!(ready(sim.call()), first);
    assert_eq!(sim.pending(), 1);
    assert!(sim.answer(Reply::Credentials(HOUR)));
    assert_ne!(ready(sim.call()), first);
    assert_eq!(sim.engine().metrics().failed_refreshes, 1);
}

#[test]
fn mandatory_callers_wait_for_one_refresh_and_share_its_error() {
    let (mut sim, _) = warmed(sts());
    sim.advance(secs(3550));
    let tickets: Vec<_> = (0..5)
        .map(|_| match sim.call() {
            Access::Pending(id) => id,
            other => panic!("mandatory window must wait, got {other:?}"),
        })
        .collect();
    assert!(tickets.windows(2).all(|w| w[0] == w[1]), "single flight");
    assert_eq!(sim.pending(), 1);
    assert!(sim.answer(Reply::Denied));
    for ticket in tickets {
        match sim.recall(ticket) {
            Access::Failed(Error::Service(e)) => assert_eq!(e.code(), &ErrorCode::AccessDenied),
            other => panic!("{other:?}"),
        }
    }
    // Denied is not fixed by trying again: callers in the next five seconds
    // get the error without an attempt, then one tries again.
    match sim.call() {
        Access::Failed(Error::BackingOff { last, .. }) => {
            assert!(matches!(*last, Error::Service(_)), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.pending(), 0);
    sim.advance(secs(5));
    assert!(matches!(sim.call(), Access::Pending(_)));
    assert_eq!(sim.pending(), 1);
}

#[test]
fn a_credential_rejected_as_expired_is_dropped_and_refreshed_once() {
    let (mut sim, first) = warmed(sts());
    let key = first.access_key_id().to_owned();
    // Many requests signed with it come back rejected: one refresh.
    for _ in 0..5 {
        assert!(
            sim.reject(&key, Rejection::Expired),
            "a retry gets other credentials"
        );
    }
    assert_eq!(sim.pending(), 1, "the refresh starts at once");
    let Access::Pending(fetch) = sim.call() else {
        panic!("the rejected credential must not be handed out again")
    };
    assert!(sim.answer(Reply::Credentials(HOUR)));
    let second = ready(sim.recall(fetch));
    assert_ne!(second, first);
    // A late rejection of the old key changes nothing.
    assert!(sim.reject(&key, Rejection::Expired));
    assert_eq!(ready(sim.call()), second);
    assert_eq!(sim.pending(), 0);
    let metrics = sim.engine().metrics();
    assert_eq!((metrics.rejected, metrics.refreshes), (1, 2));
}

#[test]
fn an_unknown_key_rejection_of_the_current_credential_is_not_retried() {
    let (mut sim, first) = warmed(sts());
    assert!(!sim.reject(first.access_key_id(), Rejection::UnknownKey));
    assert_eq!(ready(sim.call()), first);
    assert_eq!(sim.pending(), 0);
    // After a refresh, the old key's rejection is worth a retry.
    sim.advance(secs(3550));
    let Access::Pending(fetch) = sim.call() else {
        panic!("mandatory window")
    };
    assert!(sim.answer(Reply::Credentials(HOUR)));
    ready(sim.recall(fetch));
    assert!(sim.reject(first.access_key_id(), Rejection::UnknownKey));
}

#[test]
fn an_expired_credential_is_never_handed_out() {
    let (mut sim, _) = warmed(sts());
    sim.advance(HOUR);
    assert!(matches!(sim.call(), Access::Pending(_)));
}

#[test]
fn a_refresh_returning_expired_credentials_is_an_error() {
    let mut sim = sim(SessionConfig::custom());
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(sim.answer(Reply::Credentials(Duration::ZERO)));
    match sim.recall(fetch) {
        Access::Failed(Error::ExpiredCredentials { origin, .. }) => {
            assert_eq!(origin, "the custom credential provider")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fifteen_minute_credentials_are_refreshed_five_minutes_before_expiry_not_on_every_call() {
    let mut sim = sim(sts());
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    sim.answer(Reply::Credentials(secs(900)));
    let first = ready(sim.recall(fetch));
    sim.advance(secs(599));
    assert_eq!(ready(sim.call()), first);
    assert_eq!(sim.pending(), 0);
    sim.advance(secs(1));
    assert_eq!(ready(sim.call()), first);
    assert_eq!(sim.pending(), 1);
}

#[test]
fn eager_sessions_refresh_in_the_background_before_callers_wait() {
    let mut sim = sim(sts().defer_refresh(false));
    let first_fetch = sim.prefetch();
    sim.answer(Reply::Credentials(HOUR));
    let first = ready(sim.recall(first_fetch));
    let timer = sim
        .engine()
        .poll_timeout()
        .expect("a background refresh is scheduled");
    // From five minutes before the advisory window to halfway into it.
    assert!(
        timer >= START + secs(2400) && timer <= START + secs(2700 + 420),
        "{timer}"
    );
    // Callers never wait, and the timer starts the refresh.
    sim.advance(secs(3120));
    assert_eq!(sim.pending(), 1);
    assert_eq!(ready(sim.call()), first);
    sim.answer(Reply::Credentials(HOUR));
    assert_ne!(ready(sim.call()), first);
    assert_eq!(sim.engine().metrics().waits, 0);
}

#[test]
fn eager_background_failures_back_off_while_the_credential_serves() {
    let mut sim = sim(sts().defer_refresh(false).max_attempts(1));
    let fetch = sim.prefetch();
    sim.answer(Reply::Credentials(HOUR));
    let first = ready(sim.recall(fetch));
    assert!(sim.step_to_timeout(HOUR), "the background refresh");
    assert_eq!(sim.pending(), 1);
    sim.answer(Reply::Unreachable);
    let failed_at = sim.now();
    // Five minutes at least (or until expiry) before the next attempt, the
    // cached credential served meanwhile.
    sim.advance(secs(299));
    assert_eq!(sim.pending(), 0);
    assert_eq!(ready(sim.call()), first);
    assert!(sim.step_to_timeout(HOUR), "a retry is scheduled");
    let waited = sim.now() - failed_at;
    let to_expiry = START + HOUR - failed_at;
    assert!(
        waited >= to_expiry.min(time::Duration::seconds(300))
            && waited <= time::Duration::seconds(600),
        "{waited}"
    );
    assert_eq!(sim.pending(), 1);
    sim.answer(Reply::Credentials(HOUR));
    assert_ne!(ready(sim.call()), first);
}
#[test]
fn mfa_provider_is_asked_on_every_refresh_and_its_code_is_sent() {
    let config = SessionConfig::assume_role(AssumeRole::new(ROLE).serial_number(SERIAL))
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "s", None, None));
    let mut config = config;
    config.use_mfa_token_provider();
    let mut sim = sim(config);
    for round in 0..3 {
        let Access::Pending(fetch) = sim.call() else {
            panic!("round {round}: nothing usable cached")
        };
        assert!(matches!(sim.pending_work().next(), Some(Work::MfaToken(_))));
        sim.answer(Reply::Credentials(HOUR));
        let form = form(
            sim.pending_work()
                .next()
                .expect("the request follows the code"),
        );
        assert!(
            form.contains(&("TokenCode".into(), MFA_CODE.into())),
            "{form:?}"
        );
        assert!(
            form.contains(&("SerialNumber".into(), SERIAL.into())),
            "{form:?}"
        );
        sim.answer(Reply::Credentials(HOUR));
        ready(sim.recall(fetch));
        sim.advance(HOUR);
    }
}

#[test]
fn a_bad_code_from_the_provider_fails_the_refresh_without_calling_sts() {
    let mut config = SessionConfig::assume_role(AssumeRole::new(ROLE).serial_number(SERIAL))
        .region("us-east-1")
        .source_credentials(Credentials::new("AKIDSOURCE", "s", None, None));
    config.use_mfa_token_provider();
    let mut engine = Engine::new(config, &|_| None, START, 1).expect("valid").0;
    let Access::Pending(fetch) = engine.poll_access(START, None) else {
        panic!("nothing cached")
    };
    let Some(Request::MfaToken { fetch: asked, .. }) = engine.poll_request() else {
        panic!("the MFA code comes first")
    };
    engine.handle_input(
        START,
        Input::MfaToken {
            fetch: asked,
            result: Ok("12 34 56".into()),
        },
    );
    assert!(matches!(
        engine.poll_event(),
        Some(Event::Finished { result: Err(_), .. })
    ));
    match engine.poll_access(START, Some(fetch)) {
        Access::Failed(Error::Mfa(MfaError::InvalidToken { shape })) => {
            assert_eq!(shape, "8 characters")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.metrics().upstream_calls, 0);
}

#[test]
fn a_static_token_code_serves_the_first_fetch_only() {
    let config = SessionConfig::assume_role(
        AssumeRole::new(ROLE)
            .serial_number(SERIAL)
            .token_code("654321"),
    )
    .region("us-east-1")
    .source_credentials(Credentials::new("AKIDSOURCE", "s", None, None));
    let mut sim = sim(config);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    let form = form(sim.pending_work().next().expect("a request"));
    assert!(form.contains(&("TokenCode".into(), "654321".into())));
    sim.answer(Reply::Credentials(HOUR));
    ready(sim.recall(fetch));
    sim.advance(HOUR);
    let Access::Pending(fetch) = sim.call() else {
        panic!("expired")
    };
    assert_eq!(sim.pending(), 0, "no STS call without a code");
    match sim.recall(fetch) {
        Access::Failed(Error::Mfa(MfaError::StaticTokenSpent)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_source_credentials_are_asked_for_first_and_sign_the_request() {
    let mut config = SessionConfig::assume_role(AssumeRole::new(ROLE)).region("us-east-1");
    config.use_source(SourceCredentials::External);
    let mut sim = sim(config);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert!(matches!(sim.pending_work().next(), Some(Work::Source(_))));
    sim.answer(Reply::Credentials(HOUR));
    match sim.pending_work().next() {
        Some(Work::Transmit(_, request)) => {
            let authorization = request.headers()["authorization"].to_str().expect("ascii");
            assert!(
                authorization.contains("Credential=AKIDSOURCE/"),
                "{authorization}"
            );
        }
        other => panic!("{other:?}"),
    }
    sim.answer(Reply::Credentials(HOUR));
    ready(sim.recall(fetch));
}

#[test]
fn a_failing_source_is_reported_as_a_source_error() {
    let mut config = SessionConfig::assume_role(AssumeRole::new(ROLE)).region("us-east-1");
    config.use_source(SourceCredentials::External);
    let mut sim = sim(config);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    sim.answer(Reply::Unreachable);
    assert!(matches!(
        sim.recall(fetch),
        Access::Failed(Error::Source(_))
    ));
    assert_eq!(sim.engine().metrics().upstream_calls, 0);
}

#[test]
fn expired_static_source_credentials_are_an_error_not_a_request() {
    let config = SessionConfig::assume_role(AssumeRole::new(ROLE))
        .region("us-east-1")
        .source_credentials(Credentials::new("ASIAOLD", "s", None, Some(START)));
    let mut sim = sim(config);
    let Access::Pending(fetch) = sim.call() else {
        panic!("nothing cached")
    };
    assert_eq!(sim.pending(), 0);
    match sim.recall(fetch) {
        Access::Failed(Error::Source(inner)) => {
            assert!(
                matches!(*inner, Error::ExpiredCredentials { .. }),
                "{inner}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn answers_for_a_finished_fetch_are_ignored() {
    let mut engine = Engine::new(SessionConfig::custom(), &|_| None, START, 1)
        .expect("valid")
        .0;
    let Access::Pending(fetch) = engine.poll_access(START, None) else {
        panic!("nothing cached")
    };
    let provided = |expiration| Input::Provided {
        fetch,
        result: Ok(CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("s")
            .expiration(expiration)),
    };
    engine.handle_input(START, provided(START + HOUR));
    engine.handle_input(START, provided(START + HOUR * 2));
    assert_eq!(engine.metrics().refreshes, 1);
    assert_eq!(engine.metrics().expiration, Some(START + HOUR));
}

#[test]
fn output_debug_never_shows_request_secrets() {
    let config = SessionConfig::assume_role(
        AssumeRole::new(ROLE)
            .serial_number(SERIAL)
            .token_code("987654"),
    )
    .region("us-east-1")
    .source_credentials(Credentials::new(
        "ASIASOURCE",
        "source-secret",
        Some("source-token".into()),
        None,
    ));
    let mut engine = Engine::new(config, &|_| None, START, 1).expect("valid").0;
    engine.poll_access(START, None);
    let printed = format!("{:?}", engine.poll_request().expect("a request"));
    for secret in ["987654", "source-secret", "source-token"] {
        assert!(!printed.contains(secret), "{printed}");
    }
}

#[test]
fn custom_results_without_an_expiration_are_refused() {
    let mut engine = Engine::new(SessionConfig::custom(), &|_| None, START, 1)
        .expect("valid")
        .0;
    let Access::Pending(fetch) = engine.poll_access(START, None) else {
        panic!("nothing cached")
    };
    engine.handle_input(
        START,
        Input::Provided {
            fetch,
            result: Ok(CustomCredentials::from(Credentials::new(
                "AKID", "s", None, None,
            ))),
        },
    );
    match engine.poll_access(START, Some(fetch)) {
        Access::Failed(Error::Provider(e)) => assert!(e.to_string().contains("expiration"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn iot_sessions_fetch_over_the_device_identity_and_retry() {
    use refresh_session_core::harness::iot_credentials_response;
    use refresh_session_core::iot::{Iot, TlsIdentity};

    let params = Iot::new(
        "c2example.credentials.iot.eu-west-1.amazonaws.com",
        "device-role",
    )
    .thing_name("sensor-17")
    .certificate_pem("-----BEGIN CERTIFICATE-----")
    .private_key_pem("-----BEGIN PRIVATE KEY-----");
    let (mut engine, session) =
        Engine::new(SessionConfig::iot(params), &|_| None, START, 1).expect("valid");
    assert!(session.device_identity().is_some());
    // whoami's region comes from the endpoint's name.
    assert_eq!(
        session.sts_endpoint().expect("derived").region(),
        "eu-west-1"
    );
    let Access::Pending(fetch) = engine.poll_access(START, None) else {
        panic!("nothing cached")
    };
    let Some(Request::Transmit {
        fetch: asked,
        request,
        tls,
    }) = engine.poll_request()
    else {
        panic!("a request to the credential provider")
    };
    assert_eq!(tls, TlsIdentity::Device);
    assert_eq!(request.headers()["x-amzn-iot-thingname"], "sensor-17");
    // A 503 is retried after a backoff, with the same identity.
    let mut unavailable = http::Response::new(b"{\"message\":\"busy\"}".to_vec());
    *unavailable.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    engine.handle_input(
        START,
        Input::Response {
            fetch: asked,
            response: unavailable,
        },
    );
    let retry_at = engine.poll_timeout().expect("a retry is scheduled");
    engine.handle_timeout(retry_at);
    let Some(Request::Transmit { tls, .. }) = engine.poll_request() else {
        panic!("the retry")
    };
    assert_eq!(tls, TlsIdentity::Device);
    let issued = Credentials::new("ASIAIOT", "s", Some("t".into()), Some(retry_at + HOUR));
    engine.handle_input(
        retry_at,
        Input::Response {
            fetch: asked,
            response: iot_credentials_response(&issued),
        },
    );
    match engine.poll_access(retry_at, Some(fetch)) {
        Access::Ready(credentials) => assert_eq!(*credentials, issued),
        other => panic!("{other:?}"),
    }
}
