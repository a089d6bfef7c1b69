//! Every invalid builder value is refused at `build` with an error that
//! names the field.

use std::time::Duration;

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, Error};

const ROLE: &str = "arn:aws:iam::123456789012:role/app";
const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

fn sts(params: AssumeRole) -> Builder {
    RefreshableSession::sts(params)
        .region("us-east-1")
        .source_credentials(Credentials::new("AKID", "secret", None, None))
}

fn field(builder: Builder) -> &'static str {
    match builder.build() {
        Err(Error::Config(error)) => {
            assert!(!error.problem().is_empty());
            error.field()
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn invalid_values_name_their_field() {
    let secs = Duration::from_secs;
    let cases: Vec<(Builder, &str)> = vec![
        (sts(AssumeRole::new("not-an-arn")), "RoleArn"),
        (
            sts(AssumeRole::new(ROLE).role_session_name("x")),
            "RoleSessionName",
        ),
        (
            sts(AssumeRole::new(ROLE).duration(secs(60))),
            "DurationSeconds",
        ),
        (
            sts(AssumeRole::new(ROLE).duration(secs(50_000))),
            "DurationSeconds",
        ),
        (sts(AssumeRole::new(ROLE).external_id("!")), "ExternalId"),
        (sts(AssumeRole::new(ROLE).policy("")), "Policy"),
        (sts(AssumeRole::new(ROLE).policy_arn("arn")), "PolicyArns"),
        (sts(AssumeRole::new(ROLE).tag("", "v")), "Tags.Key"),
        (
            sts(AssumeRole::new(ROLE).transitive_tag_key("")),
            "TransitiveTagKeys",
        ),
        (
            sts(AssumeRole::new(ROLE).source_identity("aws:x")),
            "SourceIdentity",
        ),
        (
            sts(AssumeRole::new(ROLE).serial_number("x")),
            "SerialNumber",
        ),
        (
            sts(AssumeRole::new(ROLE)
                .serial_number(SERIAL)
                .token_code("12345")),
            "TokenCode",
        ),
        (
            sts(AssumeRole::new(ROLE).provided_context("arn", "assertion")),
            "ProvidedContexts.ProviderArn",
        ),
        (sts(AssumeRole::new(ROLE)).region("Europe"), "region"),
        (
            sts(AssumeRole::new(ROLE)).endpoint_url("http://sts.example.com"),
            "endpoint_url",
        ),
        (
            sts(AssumeRole::new(ROLE)).endpoint_url("not a url"),
            "endpoint_url",
        ),
        (
            sts(AssumeRole::new(ROLE))
                .advisory_timeout(secs(60))
                .mandatory_timeout(secs(120)),
            "mandatory_timeout",
        ),
        (
            sts(AssumeRole::new(ROLE)).connect_timeout(Duration::ZERO),
            "connect_timeout",
        ),
        (
            sts(AssumeRole::new(ROLE)).read_timeout(Duration::ZERO),
            "read_timeout",
        ),
        (
            sts(AssumeRole::new(ROLE)).mfa_token_provider(|_| Ok("123456".into())),
            "SerialNumber",
        ),
        (
            sts(AssumeRole::new(ROLE).serial_number(SERIAL)),
            "SerialNumber",
        ),
        (
            sts(AssumeRole::new(ROLE)
                .serial_number(SERIAL)
                .token_code("123456"))
            .mfa_token_provider(|_| Ok("1".into())),
            "TokenCode",
        ),
        (
            sts(AssumeRole::new(ROLE).serial_number(SERIAL)).mfa_command(Vec::<String>::new()),
            "mfa_command",
        ),
        (
            sts(AssumeRole::new(ROLE).serial_number(SERIAL))
                .mfa_command(["true"])
                .mfa_command_timeout(Duration::ZERO),
            "mfa_command_timeout",
        ),
    ];
    for (builder, expected) in cases {
        let debug = format!("{builder:?}");
        assert_eq!(field(builder), expected, "{debug}");
    }
}

#[test]
fn custom_sessions_refuse_an_mfa_provider() {
    let builder = RefreshableSession::custom(|| Ok(CustomCredentials::new()))
        .mfa_token_provider(|_| Ok("1".into()));
    assert_eq!(field(builder), "mfa_token_provider");
}

#[test]
fn a_valid_deferred_session_builds_without_calling_anything() {
    // Port 9 (discard) on loopback: nothing answers, and nothing is asked.
    let session = sts(AssumeRole::new(ROLE))
        .endpoint_url("http://127.0.0.1:9")
        .build()
        .expect("valid");
    assert_eq!(session.metrics().upstream_calls, 0);
}
