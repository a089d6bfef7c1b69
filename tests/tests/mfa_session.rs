//! MFA sessions against the loopback STS, which assumes roles only with
//! MFA: one `GetSessionToken` code signs many `AssumeRole` calls of many
//! roles, a new code is asked for only as the MFA session nears its
//! expiry, and an MFA session STS refuses costs one new code, not a loop.
//! (moto refuses requests signed with the session credentials it issues,
//! so the whole path runs here; `blocking_moto` checks the request.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Error, RefreshableSession, SessionFleet};
use refresh_session_core::fleet::FleetKey;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
const ROLES: [&str; 3] = [
    "arn:aws:iam::123456789012:role/deploy",
    "arn:aws:iam::123456789012:role/read-only",
    "arn:aws:iam::123456789012:role/billing",
];
/// Role credentials live a second: many refreshes in a short test.
const ROLE_LIFETIME: Duration = Duration::from_secs(1);
/// Bounds every call of a failure path.
const CALL_LIMIT: Duration = Duration::from_secs(10);

fn mfa_sts() -> LoopbackSts {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: ROLE_LIFETIME,
        delay: Duration::ZERO,
    });
    sts.require_mfa();
    sts
}

fn user_keys() -> Credentials {
    Credentials::new("AKIAALICE", "alice-secret", None, None)
}

/// An MFA token provider that counts the codes it gives.
fn counting(
    codes: &Arc<AtomicUsize>,
) -> impl Fn(&str) -> Result<String, refresh_session_blocking::BoxError> + Send + Sync + 'static {
    let codes = codes.clone();
    move |serial| {
        assert_eq!(serial, SERIAL);
        codes.fetch_add(1, Ordering::SeqCst);
        Ok("123456".to_owned())
    }
}

fn session(
    sts: &LoopbackSts,
    role: &str,
    mfa_lifetime: Duration,
) -> refresh_session_blocking::Builder {
    RefreshableSession::sts(AssumeRole::new(role))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(user_keys())
        .advisory_timeout(Duration::from_millis(400))
        .mandatory_timeout(Duration::from_millis(150))
        .mfa_session(SERIAL, mfa_lifetime)
}

/// Every role was assumed without a code of its own, signed by an MFA
/// session; returns how many times.
fn assert_roles_signed_by_mfa_sessions(sts: &LoopbackSts) -> usize {
    let requests = sts.requests();
    let assumed: Vec<_> = requests
        .iter()
        .filter(|form| form.get("Action").map(String::as_str) == Some("AssumeRole"))
        .collect();
    for form in &assumed {
        assert!(
            !form.contains_key("TokenCode") && !form.contains_key("SerialNumber"),
            "AssumeRole went out with a code: {form:?}"
        );
    }
    assumed.len()
}

#[test]
fn three_roles_of_a_fleet_share_one_code_per_mfa_session_lifetime() {
    let sts = mfa_sts();
    let codes = Arc::new(AtomicUsize::new(0));
    let mfa_lifetime = Duration::from_secs(4);
    let fleet = SessionFleet::builder()
        .region("us-east-1")
        .endpoint_url(sts.url())
        .source_credentials(user_keys())
        .advisory_timeout(Duration::from_millis(400))
        .mandatory_timeout(Duration::from_millis(150))
        .mfa_session(SERIAL, mfa_lifetime)
        .sessions(|members| members.mfa_token_provider(counting(&codes)))
        .build()
        .expect("valid");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(9) {
        for role in ROLES {
            let credentials = fleet
                .credentials(&FleetKey::new(role))
                .expect("role credentials");
            assert!(credentials.access_key_id().starts_with("ASIALOOP"));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mfa_sessions = sts.mfa_sessions();
    assert_eq!(
        codes.load(Ordering::SeqCst),
        mfa_sessions.len(),
        "one code per MFA session"
    );
    // Nine seconds of four-second MFA sessions renewed in their last half:
    // three to five of them, each replaced only near its expiry.
    assert!((3..=5).contains(&mfa_sessions.len()), "{mfa_sessions:?}");
    for pair in mfa_sessions.windows(2) {
        let gap = pair[1].issued_at - pair[0].issued_at;
        assert!(
            gap >= mfa_lifetime / 2 - Duration::from_millis(100) && gap < mfa_lifetime,
            "an MFA session was replaced {gap} after it started"
        );
    }
    let assumed = assert_roles_signed_by_mfa_sessions(&sts);
    assert!(
        assumed >= 3 * 6,
        "three roles refreshed every second: {assumed} AssumeRole calls"
    );
    assert_eq!(sts.stale_signatures(), 0);
}

#[test]
fn a_revoked_mfa_session_costs_one_new_code() {
    let sts = mfa_sts();
    let codes = Arc::new(AtomicUsize::new(0));
    let session = session(&sts, ROLES[0], Duration::from_secs(3600))
        .mfa_token_provider(counting(&codes))
        .build()
        .expect("valid");
    let first = session.credentials_within(CALL_LIMIT).expect("credentials");
    assert!(first.is_some());
    assert_eq!(codes.load(Ordering::SeqCst), 1);
    // STS revokes the MFA session; the role's next refresh is refused.
    sts.revoke(&sts.mfa_sessions()[0].access_key_id);
    thread::sleep(ROLE_LIFETIME);
    let next = session
        .credentials_within(CALL_LIMIT)
        .expect("a new MFA session, then the role")
        .expect("within the limit");
    assert_ne!(next.access_key_id(), first.expect("first").access_key_id());
    assert_eq!(codes.load(Ordering::SeqCst), 2, "one new code");
    assert_eq!(sts.refused(), 1);
    assert_eq!(sts.mfa_sessions().len(), 2);
}

#[test]
fn an_mfa_session_refused_again_is_an_error_not_a_loop() {
    let sts = mfa_sts();
    let codes = Arc::new(AtomicUsize::new(0));
    let session = session(&sts, ROLES[1], Duration::from_secs(3600))
        .mfa_token_provider(counting(&codes))
        .build()
        .expect("valid");
    session.credentials_within(CALL_LIMIT).expect("credentials");
    // Every MFA session STS issues from now on is refused (issued keys are
    // numbered).
    for n in 1..=10 {
        sts.revoke(&format!("ASIAMFA{n:09}"));
    }
    thread::sleep(ROLE_LIFETIME);
    // The refresh tells the MFA session of the refusal once: one new
    // code, then the role's refusal as the error.
    match session.credentials_within(CALL_LIMIT) {
        Err(Error::Service(refusal)) => assert_eq!(refusal.code().as_str(), "ExpiredToken"),
        other => panic!("expected STS's refusal: {other:?}"),
    }
    assert_eq!(codes.load(Ordering::SeqCst), 2, "one new code");
    assert_eq!(sts.refused(), 2);
    // Callers keep asking: the session backs off, and each later refresh
    // costs at most one code.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        match session.credentials_within(CALL_LIMIT) {
            Err(Error::Service(_) | Error::BackingOff { .. }) => {}
            other => panic!("expected the refusal or backing off: {other:?}"),
        }
        thread::sleep(Duration::from_millis(20));
    }
    let codes = codes.load(Ordering::SeqCst);
    let refreshes = sts.refused() / 2;
    assert_eq!(codes, 1 + refreshes, "one code per refused refresh");
    // Backing off from 1 s, doubling: at most four refreshes in 3 s.
    assert!(refreshes <= 4, "{refreshes} refreshes in 3 s");
}

#[test]
fn an_mfa_session_is_refused_what_aws_refuses() {
    let sts = mfa_sts();
    let with_serial = session(&sts, ROLES[0], Duration::from_secs(3600))
        .mfa_token_provider(|_| Ok("123456".to_owned()));
    let role_with_serial = RefreshableSession::sts(AssumeRole::new(ROLES[0]).serial_number(SERIAL))
        .region("us-east-1")
        .endpoint_url(sts.url())
        .mfa_session(SERIAL, Duration::from_secs(3600))
        .mfa_token_provider(|_| Ok("123456".to_owned()));
    let field = |result: Result<RefreshableSession, Error>| match result {
        Err(Error::Config(error)) => error.field(),
        other => panic!("expected a configuration error: {other:?}"),
    };
    assert_eq!(field(role_with_serial.build()), "SerialNumber");
    let aws = |duration| {
        RefreshableSession::sts(AssumeRole::new(ROLES[0]))
            .region("us-east-1")
            .source_credentials(user_keys())
            .mfa_session(SERIAL, duration)
            .mfa_token_provider(|_| Ok("123456".to_owned()))
            .build()
    };
    assert!(aws(Duration::from_secs(36 * 3600)).is_ok());
    assert_eq!(
        field(aws(Duration::from_secs(36 * 3600 + 1))),
        "DurationSeconds"
    );
    assert_eq!(field(aws(Duration::from_secs(600))), "DurationSeconds");
    let without_codes = RefreshableSession::sts(AssumeRole::new(ROLES[0]))
        .region("us-east-1")
        .source_credentials(user_keys())
        .mfa_session(SERIAL, Duration::from_secs(3600));
    assert_eq!(field(without_codes.build()), "SerialNumber");
    // GetSessionToken takes long-term keys only: temporary ones are
    // refused before they reach STS.
    let temporary = with_serial
        .source_credentials(Credentials::new(
            "ASIATEMP",
            "secret",
            Some("token".into()),
            None,
        ))
        .build()
        .expect("valid");
    match temporary.credentials_within(CALL_LIMIT) {
        Err(Error::Source(error)) => assert!(
            error.to_string().contains("long-term access keys"),
            "{error}"
        ),
        other => panic!("expected the source's error: {other:?}"),
    }
    assert!(sts.mfa_sessions().is_empty());
}

#[test]
fn profile_roles_opt_in_in_the_profile_or_on_the_builder() {
    let sts = mfa_sts();
    let home = tempfile::tempdir().expect("a temp dir");
    let config = home.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile admin]\nrole_arn = {}\nsource_profile = base\nmfa_serial = {SERIAL}\nmfa_session_duration = 3600\n\
             [profile plain]\nrole_arn = {}\nsource_profile = base\nmfa_serial = {SERIAL}\n\
             [profile base]\naws_access_key_id = AKIAALICE\naws_secret_access_key = alice-secret\n",
            ROLES[0], ROLES[1]
        ),
    )
    .expect("written");
    let env = [
        ("HOME", home.path().display().to_string()),
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_STS", sts.url()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let codes = Arc::new(AtomicUsize::new(0));
    let chain = |profile: &str| {
        RefreshableSession::default_chain()
            .environment(env.clone())
            .profile_name(profile)
            .mfa_token_provider(counting(&codes))
    };
    let admin = chain("admin").build().expect("valid");
    // The builder opts in for the device of the `plain` profile.
    let plain = chain("plain")
        .mfa_session(SERIAL, Duration::from_secs(3600))
        .build()
        .expect("valid");
    for _ in 0..3 {
        for session in [&admin, &plain] {
            let credentials = session
                .credentials_within(CALL_LIMIT)
                .expect("credentials")
                .expect("within the limit");
            assert!(credentials.access_key_id().starts_with("ASIALOOP"));
        }
        thread::sleep(ROLE_LIFETIME);
    }
    assert_eq!(codes.load(Ordering::SeqCst), 2, "one code per session");
    assert_eq!(sts.mfa_sessions().len(), 2);
    assert!(assert_roles_signed_by_mfa_sessions(&sts) >= 6);
    // A builder MFA session no profile role can use is a mistake.
    let unused = chain("plain")
        .mfa_session(
            "arn:aws:iam::123456789012:mfa/other",
            Duration::from_secs(3600),
        )
        .build();
    assert!(matches!(unused, Err(Error::Config(e)) if e.field() == "mfa_session"));
}
