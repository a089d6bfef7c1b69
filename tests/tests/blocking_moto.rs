//! The blocking session against moto's STS, which verifies SigV4
//! signatures and role trust policies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use refresh_session_blocking::error::ErrorCode;
use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Error, RefreshableSession};
use refresh_session_tests::moto::Moto;
use time::OffsetDateTime;

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/tester";

fn session(moto: &Moto, params: AssumeRole) -> refresh_session_blocking::Builder {
    RefreshableSession::sts(params)
        .region("us-east-1")
        .endpoint_url(moto.url())
        .source_credentials(moto.user_credentials())
}

fn assumed_role_arn(role_arn: &str, session_name: &str) -> String {
    let role = role_arn.rsplit('/').next().expect("role name");
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session_name}")
}

#[test]
fn assume_role_with_every_optional_field() {
    let moto = Moto::start();
    let params = AssumeRole::new(&moto.external_role_arn)
        .role_session_name("every-field")
        .duration(Duration::from_secs(900))
        .external_id(&moto.external_id)
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .tag("team", "platform")
        .tag("project", "refresh-session")
        .transitive_tag_key("team")
        .source_identity("tester")
        .serial_number(SERIAL)
        .token_code("123456")
        .provided_context("arn:aws:iam::aws:contextProvider/IdentityCenter", "context-assertion");
    let session = session(&moto, params).build().expect("valid configuration");
    let before = OffsetDateTime::now_utc();
    let credentials = session.credentials().expect("moto assumes the role");
    assert!(
        credentials.access_key_id().starts_with("ASIA"),
        "{credentials:?}"
    );
    let lifetime = credentials.expiration().expect("expires") - before;
    assert!(
        lifetime <= time::Duration::seconds(901) && lifetime > time::Duration::seconds(800),
        "DurationSeconds=900 gave {lifetime}"
    );
    let identity = session.whoami().expect("GetCallerIdentity");
    assert_eq!(
        identity.arn,
        assumed_role_arn(&moto.external_role_arn, "every-field")
    );
    assert_eq!(identity.account, "123456789012");
}

#[test]
fn whoami_returns_the_assumed_role_not_the_caller() {
    let moto = Moto::start();
    let session = session(
        &moto,
        AssumeRole::new(&moto.role_arn).role_session_name("who"),
    )
    .build()
    .expect("valid configuration");
    let identity = session.whoami().expect("GetCallerIdentity");
    assert_eq!(identity.arn, assumed_role_arn(&moto.role_arn, "who"));
    assert_ne!(identity.arn, moto.user_arn);
}

#[test]
fn the_default_session_name_reaches_sts() {
    let moto = Moto::start();
    let session = session(&moto, AssumeRole::new(&moto.role_arn))
        .build()
        .expect("valid");
    let arn = session.whoami().expect("GetCallerIdentity").arn;
    let name = arn.rsplit('/').next().expect("session name");
    assert!(name.starts_with("refresh-session-"), "{arn}");
    assert!(
        name["refresh-session-".len()..].parse::<u64>().is_ok(),
        "{arn}"
    );
}

#[test]
fn a_wrong_secret_is_a_typed_signature_error() {
    let moto = Moto::start();
    let wrong = Credentials::new(moto.access_key_id.clone(), "not-the-secret", None, None);
    let session = session(&moto, AssumeRole::new(&moto.role_arn))
        .source_credentials(wrong)
        .build()
        .expect("valid configuration");
    match session.credentials() {
        Err(Error::Service(error)) => {
            assert_eq!(error.code(), &ErrorCode::SignatureDoesNotMatch, "{error}");
            assert_eq!(error.status(), 403);
            assert!(!error.to_string().contains("not-the-secret"));
        }
        other => panic!("expected SignatureDoesNotMatch, got {other:?}"),
    }
    assert_eq!(session.metrics().failed_refreshes, 1);
}

#[test]
fn the_trust_policy_sees_the_external_id() {
    let moto = Moto::start();
    let wrong = session(
        &moto,
        AssumeRole::new(&moto.external_role_arn).external_id("some-other-id"),
    )
    .build()
    .expect("valid");
    match wrong.credentials() {
        Err(Error::Service(error)) => assert_eq!(error.code(), &ErrorCode::AccessDenied, "{error}"),
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    let with = session(
        &moto,
        AssumeRole::new(&moto.external_role_arn).external_id(&moto.external_id),
    )
    .build()
    .expect("valid");
    with.credentials()
        .expect("the external id satisfies the trust policy");
}

#[test]
fn mfa_via_a_provider() {
    let moto = Moto::start();
    let asked = Arc::new(AtomicUsize::new(0));
    let session = {
        let asked = asked.clone();
        session(
            &moto,
            AssumeRole::new(&moto.role_arn)
                .role_session_name("mfa-provider")
                .serial_number(SERIAL),
        )
        .mfa_token_provider(move |serial| {
            assert_eq!(serial, SERIAL);
            asked.fetch_add(1, Ordering::SeqCst);
            Ok(" 123456\n".to_owned())
        })
        .build()
        .expect("valid")
    };
    session.credentials().expect("assumed with MFA");
    session.credentials().expect("cached");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once per refresh");
    assert_eq!(
        session.whoami().expect("whoami").arn,
        assumed_role_arn(&moto.role_arn, "mfa-provider")
    );
}

#[test]
fn mfa_via_a_command() {
    let moto = Moto::start();
    let session = session(
        &moto,
        AssumeRole::new(&moto.role_arn)
            .role_session_name("mfa-command")
            .serial_number(SERIAL),
    )
    .mfa_command(["sh", "-c", "echo 'Amazon Web Services:tester  135790'"])
    .build()
    .expect("valid");
    session.credentials().expect("assumed with MFA");
    assert_eq!(
        session.whoami().expect("whoami").arn,
        assumed_role_arn(&moto.role_arn, "mfa-command")
    );
}

#[test]
fn an_mfa_session_from_get_session_token() {
    let moto = Moto::start();
    let session = RefreshableSession::session_token(
        GetSessionToken::new(SERIAL).duration(Duration::from_secs(900)),
    )
    .region("us-east-1")
    .endpoint_url(moto.url())
    .source_credentials(moto.user_credentials())
    .mfa_token_provider(|serial| {
        assert_eq!(serial, SERIAL);
        Ok("123456".to_owned())
    })
    .build()
    .expect("valid");
    let before = OffsetDateTime::now_utc();
    let credentials = session
        .credentials()
        .expect("moto checks the signature, then issues");
    // moto answers with a fixed example key; the session token is what
    // makes them session credentials.
    assert!(credentials.session_token().is_some(), "{credentials:?}");
    let lifetime = credentials.expiration().expect("expires") - before;
    assert!(
        lifetime <= time::Duration::seconds(901) && lifetime > time::Duration::seconds(800),
        "DurationSeconds=900 gave {lifetime}"
    );
}

#[test]
fn a_custom_session_whoami_uses_the_custom_credentials() {
    let moto = Moto::start();
    let keys = moto.user_credentials();
    let session = RefreshableSession::custom(move || {
        Ok(CustomCredentials::from(keys.clone())
            .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
    })
    .region("us-east-1")
    .endpoint_url(moto.url())
    .build()
    .expect("valid");
    assert_eq!(session.whoami().expect("whoami").arn, moto.user_arn);
}

/// Sends an IAM query-protocol call signed by `signer`'s `sign` helper and
/// returns moto's status and body.
fn iam_call(moto: &Moto, signer: &RefreshableSession, params: &[(&str, &str)]) -> (u16, String) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("Version", "2010-05-08");
    for (name, value) in params {
        body.append_pair(name, value);
    }
    let mut request = http::Request::post(moto.url())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body.finish().into_bytes())
        .expect("valid request");
    signer
        .sign(&mut request, "us-east-1", "iam")
        .expect("signed");
    send(request)
}

fn send(request: http::Request<Vec<u8>>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.run(request).expect("moto answers");
    let text = response.body_mut().read_to_string().expect("text body");
    (response.status().as_u16(), text)
}

#[test]
fn sign_produces_requests_moto_accepts_and_role_chaining_works() {
    let moto = Moto::start();
    // The IAM user may call IAM; sign its calls with a session's helper:
    // moto checks every signature.
    let keys = moto.user_credentials();
    let admin = RefreshableSession::custom(move || {
        Ok(CustomCredentials::from(keys.clone())
            .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
    })
    .build()
    .expect("valid");
    let base = session(
        &moto,
        AssumeRole::new(&moto.role_arn).role_session_name("base"),
    )
    .build()
    .expect("valid");
    let allow_assume = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/chained"}]}"#;
    let (status, text) = iam_call(
        &moto,
        &admin,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "app"),
            ("PolicyName", "chain"),
            ("PolicyDocument", allow_assume),
        ],
    );
    assert_eq!(status, 200, "{text}");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/app/base"},"Action":"sts:AssumeRole"}]}"#;
    let (status, text) = iam_call(
        &moto,
        &admin,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "chained"),
            ("AssumeRolePolicyDocument", trust),
        ],
    );
    assert_eq!(status, 200, "{text}");

    // Role chaining: the chained session signs its AssumeRole with the base
    // session's credentials.
    let chained_arn = "arn:aws:iam::123456789012:role/chained";
    let chained =
        RefreshableSession::sts(AssumeRole::new(chained_arn).role_session_name("chained"))
            .region("us-east-1")
            .endpoint_url(moto.url())
            .source_session(&base)
            .build()
            .expect("valid");
    assert_eq!(
        chained.whoami().expect("whoami").arn,
        assumed_role_arn(chained_arn, "chained")
    );
    assert_eq!(
        base.metrics().refreshes,
        1,
        "the base session fetched once and served the chain"
    );

    // A signed request altered after signing is refused.
    let mut request = http::Request::post(moto.url())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
        .expect("valid request");
    base.sign(&mut request, "us-east-1", "sts").expect("signed");
    request.headers_mut().insert(
        "x-amz-date",
        http::HeaderValue::from_static("20200101T000000Z"),
    );
    assert_eq!(send(request).0, 403, "a tampered signature is refused");
}
