use std::collections::HashMap;

use time::macros::datetime;

use super::*;
use crate::error::{TransportError, TransportErrorKind};
use crate::harness;

const NOW: OffsetDateTime = datetime!(2026-11-22 13:00 UTC);
const ROLE: &str = "arn:aws:iam::123456789012:role/app";

fn endpoint() -> StsEndpoint {
    StsEndpoint::resolve("us-east-1", None).expect("valid region")
}

fn signer() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "secret", None, None)
}

fn form_of(request: &http::Request<Vec<u8>>) -> HashMap<String, String> {
    form_urlencoded::parse(request.body())
        .into_owned()
        .collect()
}

fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    response
}

fn every_field() -> AssumeRole {
    AssumeRole::new(ROLE)
        .role_session_name("s1")
        .duration(Duration::from_secs(3600))
        .external_id("ext-123")
        .policy(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .tag("team", "platform")
        .tag("cost center", "42")
        .transitive_tag_key("team")
        .source_identity("alice")
        .serial_number("arn:aws:iam::123456789012:mfa/alice")
        .provided_context(
            "arn:aws:iam::aws:contextProvider/IdentityCenter",
            "assertion",
        )
}

#[test]
fn request_carries_every_field_form_encoded_and_signed() {
    let params = every_field().validated(NOW, false).expect("valid");
    let code = Secret::new("123456");
    let request =
        assume_role_request(&params, Some(&code), &signer(), &endpoint(), NOW).expect("request");
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://sts.us-east-1.amazonaws.com/");
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert!(request.headers().contains_key("authorization"));
    let form = form_of(&request);
    let expect = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE),
        ("RoleSessionName", "s1"),
        ("DurationSeconds", "3600"),
        ("ExternalId", "ext-123"),
        ("Policy", r#"{"Version":"2012-10-17","Statement":[]}"#),
        (
            "PolicyArns.member.1.arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "platform"),
        ("Tags.member.2.Key", "cost center"),
        ("Tags.member.2.Value", "42"),
        ("TransitiveTagKeys.member.1", "team"),
        ("SourceIdentity", "alice"),
        ("SerialNumber", "arn:aws:iam::123456789012:mfa/alice"),
        ("TokenCode", "123456"),
        (
            "ProvidedContexts.member.1.ProviderArn",
            "arn:aws:iam::aws:contextProvider/IdentityCenter",
        ),
        ("ProvidedContexts.member.1.ContextAssertion", "assertion"),
    ];
    for (key, value) in expect {
        assert_eq!(form.get(key).map(String::as_str), Some(value), "{key}");
    }
    assert_eq!(form.len(), expect.len(), "{form:?}");
}

#[test]
fn default_session_name_uses_the_time() {
    let params = AssumeRole::new(ROLE).validated(NOW, false).expect("valid");
    assert_eq!(params.session_name(), Some("refresh-session-1795352400000"));
}

#[test]
fn every_invalid_value_names_its_field() {
    let long = |n: usize| "a".repeat(n);
    let cases: Vec<(AssumeRole, &str)> = vec![
        (AssumeRole::new("role/app"), "RoleArn"),
        (
            AssumeRole::new("arn:aws:iam::123456789012:user/bob"),
            "RoleArn",
        ),
        (
            AssumeRole::new(ROLE).role_session_name("a"),
            "RoleSessionName",
        ),
        (
            AssumeRole::new(ROLE).role_session_name("has space"),
            "RoleSessionName",
        ),
        (
            AssumeRole::new(ROLE).role_session_name(long(65)),
            "RoleSessionName",
        ),
        (
            AssumeRole::new(ROLE).duration(Duration::from_secs(899)),
            "DurationSeconds",
        ),
        (
            AssumeRole::new(ROLE).duration(Duration::from_secs(43_201)),
            "DurationSeconds",
        ),
        (
            AssumeRole::new(ROLE).duration(Duration::from_millis(900_500)),
            "DurationSeconds",
        ),
        (AssumeRole::new(ROLE).external_id("x"), "ExternalId"),
        (
            AssumeRole::new(ROLE).external_id("white space"),
            "ExternalId",
        ),
        (AssumeRole::new(ROLE).policy(""), "Policy"),
        (AssumeRole::new(ROLE).policy(long(2049)), "Policy"),
        (AssumeRole::new(ROLE).policy_arn("short"), "PolicyArns"),
        (
            (0..11).fold(AssumeRole::new(ROLE), |p, i| {
                p.policy_arn(format!("arn:aws:iam::aws:policy/P{i:02}"))
            }),
            "PolicyArns",
        ),
        (AssumeRole::new(ROLE).tag("", "v"), "Tags.Key"),
        (AssumeRole::new(ROLE).tag("k", long(257)), "Tags.Value"),
        (AssumeRole::new(ROLE).tag("k!", "v"), "Tags.Key"),
        (
            AssumeRole::new(ROLE).tag("Team", "a").tag("team", "b"),
            "Tags.Key",
        ),
        (
            (0..51).fold(AssumeRole::new(ROLE), |p, i| p.tag(format!("k{i}"), "v")),
            "Tags",
        ),
        (
            AssumeRole::new(ROLE).transitive_tag_key(long(129)),
            "TransitiveTagKeys",
        ),
        (AssumeRole::new(ROLE).source_identity("a"), "SourceIdentity"),
        (
            AssumeRole::new(ROLE).source_identity("aws:me"),
            "SourceIdentity",
        ),
        (AssumeRole::new(ROLE).serial_number("short"), "SerialNumber"),
        (
            AssumeRole::new(ROLE).serial_number("arn:aws:iam::1:mfa/a b"),
            "SerialNumber",
        ),
        (
            AssumeRole::new(ROLE).provided_context("short", "assertion"),
            "ProvidedContexts.ProviderArn",
        ),
        (
            AssumeRole::new(ROLE)
                .provided_context("arn:aws:iam::aws:contextProvider/IdentityCenter", "abc"),
            "ProvidedContexts.ContextAssertion",
        ),
    ];
    for (params, field) in cases {
        let debug = format!("{params:?}");
        let error = params.validated(NOW, false).expect_err(&debug);
        assert_eq!(error.field(), field, "{debug}: {error}");
    }
}

#[test]
fn sessions_shorter_than_15_minutes_only_from_a_loopback_endpoint() {
    let short = || AssumeRole::new(ROLE).duration(Duration::from_secs(8));
    let error = short().validated(NOW, false).expect_err("AWS refuses it");
    assert_eq!(error.field(), "DurationSeconds");
    short()
        .validated(NOW, true)
        .expect("a test server may issue it");
    let zero = AssumeRole::new(ROLE).duration(Duration::ZERO);
    assert_eq!(
        zero.validated(NOW, true).expect_err("never").field(),
        "DurationSeconds"
    );
    assert!(is_loopback_url("http://127.0.0.1:5000/"));
    assert!(is_loopback_url("http://[::1]:5000"));
    assert!(!is_loopback_url("https://sts.amazonaws.com/"));
}

#[test]
fn endpoints_follow_the_partition_and_refuse_cleartext_to_remote_hosts() {
    let uri = |region: &str, url: Option<&str>| {
        StsEndpoint::resolve(region, url).map(|e| e.uri().to_string())
    };
    assert_eq!(
        uri("eu-west-1", None).expect("valid"),
        "https://sts.eu-west-1.amazonaws.com/"
    );
    assert_eq!(
        uri("cn-north-1", None).expect("valid"),
        "https://sts.cn-north-1.amazonaws.com.cn/"
    );
    assert_eq!(
        uri("us-iso-east-1", None).expect("valid"),
        "https://sts.us-iso-east-1.c2s.ic.gov/"
    );
    assert_eq!(
        uri("us-east-1", Some("http://127.0.0.1:5000")).expect("loopback"),
        "http://127.0.0.1:5000/"
    );
    assert_eq!(
        uri("us-east-1", Some("http://[::1]:5000/")).expect("loopback"),
        "http://[::1]:5000/"
    );
    assert_eq!(
        uri("us-east-1", Some("http://localhost:5000/")).expect("loopback"),
        "http://localhost:5000/"
    );
    assert_eq!(
        uri("us-east-1", Some("https://vpce.example.com/sts")).expect("path kept"),
        "https://vpce.example.com/sts"
    );
    for (region, url, field) in [
        ("US East", None, "region"),
        ("", None, "region"),
        ("us-east-1", Some("http://sts.example.com/"), "endpoint_url"),
        ("us-east-1", Some("ftp://127.0.0.1/"), "endpoint_url"),
        ("us-east-1", Some("/just/a/path"), "endpoint_url"),
        ("us-east-1", Some("https://host/?x=1"), "endpoint_url"),
    ] {
        assert_eq!(
            StsEndpoint::resolve(region, url).unwrap_err().field(),
            field,
            "{region} {url:?}"
        );
    }
}

#[test]
fn parses_an_aws_success_answer() {
    let body = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
  <SourceIdentity>Alice</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764</SessionToken>
      <Expiration>2019-11-09T13:34:41.123Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#;
    let assumed = parse_assume_role(&response(200, body)).expect("valid answer");
    assert_eq!(
        assumed.arn,
        "arn:aws:sts::123456789012:assumed-role/demo/TestAR"
    );
    assert_eq!(assumed.assumed_role_id, "ARO123EXAMPLE123:TestAR");
    assert_eq!(assumed.source_identity.as_deref(), Some("Alice"));
    assert_eq!(assumed.packed_policy_size, Some(6));
    let credentials = assumed.credentials;
    assert_eq!(credentials.access_key_id(), "ASIAIOSFODNN7EXAMPLE");
    assert_eq!(
        credentials.secret_access_key().expose(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    );
    assert_eq!(
        credentials.session_token().map(Secret::expose),
        Some("AQoDYXdzEPT//////////wEXAMPLEtc764")
    );
    assert_eq!(
        credentials.expiration(),
        Some(datetime!(2019-11-09 13:34:41.123 UTC))
    );
}

#[test]
fn the_harness_answer_round_trips() {
    let issued = Credentials::new(
        "ASIA1",
        "s&<>",
        Some(Secret::new("t")),
        Some(datetime!(2030-01-01 0:00 UTC)),
    );
    let parsed = parse_assume_role(&harness::assume_role_response(&issued)).expect("valid");
    assert_eq!(parsed.credentials, issued);
}

#[test]
fn error_answers_become_service_errors_in_both_aws_and_moto_shapes() {
    let aws = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error>
  <RequestId>req-aws</RequestId>
</ErrorResponse>"#;
    let moto = r#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>check your key</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
    match parse_assume_role(&response(403, aws)) {
        Err(Error::Service(e)) => {
            assert_eq!(e.code(), &ErrorCode::AccessDenied);
            assert_eq!(e.message(), "not authorized");
            assert_eq!(e.request_id(), Some("req-aws"));
            assert_eq!(e.status(), 403);
        }
        other => panic!("{other:?}"),
    }
    let mut moto_response = response(403, moto);
    moto_response.headers_mut().insert(
        "x-amzn-requestid",
        http::HeaderValue::from_static("req-moto"),
    );
    match parse_caller_identity(&moto_response) {
        Err(Error::Service(e)) => {
            assert_eq!(e.code(), &ErrorCode::SignatureDoesNotMatch);
            assert_eq!(e.request_id(), Some("req-moto"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_answers_are_typed_errors() {
    let cases = [
        (200, "<AssumeRoleResponse><AssumeRoleResult><Credentials>"),
        (200, "<AssumeRoleResponse></AssumeRoleResponse>"),
        (200, "<SomethingElse/>"),
        (200, "{\"json\": true}"),
        (503, "<html><body>Service Unavailable</body></html>"),
        (500, ""),
    ];
    for (status, body) in cases {
        match parse_assume_role(&response(status, body)) {
            Err(error @ Error::InvalidResponse { .. }) => {
                assert_eq!(error.is_retryable(), status >= 500, "{body}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    let bad_time = harness::assume_role_response(&Credentials::new("A", "s", None, None));
    assert!(matches!(
        parse_assume_role(&bad_time),
        Err(Error::InvalidResponse { .. })
    ));
}

#[test]
fn caller_identity_round_trip() {
    let request = caller_identity_request(&endpoint(), &signer(), NOW).expect("request");
    let form = form_of(&request);
    assert_eq!(
        form.get("Action").map(String::as_str),
        Some("GetCallerIdentity")
    );
    let body = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/app/s1</Arn>
    <UserId>AROAEXAMPLE:s1</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;
    let identity = parse_caller_identity(&response(200, body)).expect("valid");
    assert_eq!(
        identity.arn,
        "arn:aws:sts::123456789012:assumed-role/app/s1"
    );
    assert_eq!(identity.account, "123456789012");
    assert_eq!(identity.user_id, "AROAEXAMPLE:s1");
}

#[test]
fn transport_errors_are_retryable_except_tls() {
    assert!(Error::from(TransportError::new(TransportErrorKind::Timeout, "t")).is_retryable());
    assert!(!Error::from(TransportError::new(TransportErrorKind::Tls, "t")).is_retryable());
}
