use std::collections::HashMap;

use time::macros::datetime;

use super::*;
use crate::chain::plan::ChainInputs;
use crate::error::ConfigError;
use crate::error::TransportErrorKind;
use crate::harness::{
    assume_role_response, error_response, json_response, session_token_response,
    web_identity_response,
};
use crate::profile::{ProfileFile, ProfileSet};
use crate::retry::RetryPolicy;
use crate::sts::StsEndpoint;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

/// The plan for `profile` of `config`, in `env` with HOME set.
fn decide(
    env: &[(&str, &str)],
    config: &str,
    profile: Option<&str>,
) -> Result<SourcePlan, ConfigError> {
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.insert("HOME".into(), "/home/me".into());
    let profiles = ProfileSet::parse(
        Some(&ProfileFile {
            path: "config".into(),
            text: config.into(),
        }),
        None,
    )
    .expect("valid");
    let lookup = |key: &str| vars.get(key).cloned();
    SourcePlan::decide(&ChainInputs {
        env: &lookup,
        profiles: &profiles,
        profile_name: profile,
        now: NOW,
        mfa_session: None,
        loopback: false,
    })
}

/// A chain source and the world around it: the environment, the files,
/// the STS endpoint and the retry policy.
struct Run {
    source: ChainSource,
    endpoint: Result<StsEndpoint, ConfigError>,
    retry: RetryPolicy,
    now: OffsetDateTime,
    jitter: f64,
}

impl Run {
    fn new(env: &[(&str, &str)], config: &str, profile: Option<&str>) -> Self {
        let plan = decide(env, config, profile).expect("a plan");
        Self {
            source: ChainSource::new(plan),
            endpoint: StsEndpoint::resolve("us-east-1", None),
            retry: RetryPolicy::new(3, Duration::from_secs(30)).expect("valid"),
            now: NOW,
            jitter: 0.0,
        }
    }

    fn start(&mut self) -> (SourceRun, Step) {
        let cx = Context::new(
            &self.endpoint,
            &self.retry,
            self.now,
            time::Duration::ZERO,
            self.jitter,
            false,
        );
        SourceRun::start(&mut self.source, cx)
    }

    fn tell(&mut self, run: &mut SourceRun, told: Told) -> Step {
        let cx = Context::new(
            &self.endpoint,
            &self.retry,
            self.now,
            time::Duration::ZERO,
            self.jitter,
            false,
        );
        run.on(&mut self.source, told, cx)
            .expect("an answer it asked for")
    }

    fn timeout(&mut self, run: &mut SourceRun) -> Option<Step> {
        let cx = Context::new(
            &self.endpoint,
            &self.retry,
            self.now,
            time::Duration::ZERO,
            self.jitter,
            false,
        );
        run.on_timeout(&mut self.source, cx)
    }
}

fn expiring(key: &str, at: OffsetDateTime) -> Credentials {
    Credentials::new(key, "secret", Some(Secret::new("token")), Some(at))
}

fn transmitted(step: Step) -> http::Request<Vec<u8>> {
    match step {
        Step::Ask(Ask::Transmit(request)) => request,
        Step::Done(result) => panic!("a request, not done: {result:?}"),
        _ => panic!("a request"),
    }
}

fn finished(step: Step) -> Result<Arc<Credentials>, Error> {
    match step {
        Step::Done(result) => result,
        _ => panic!("done"),
    }
}

fn form(request: &http::Request<Vec<u8>>) -> String {
    String::from_utf8(request.body().clone()).expect("a form")
}

const ROLES: &str = "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = ops\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n\
[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = base\n\
[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = secret\n";

#[test]
fn roles_are_assumed_in_turn_and_the_result_is_reused() {
    let mut world = Run::new(&[], ROLES, Some("admin"));
    let (mut run, step) = world.start();
    let ops = transmitted(step);
    assert!(form(&ops).contains("role%2Fops"), "{}", form(&ops));
    let authorization = ops.headers()["authorization"].to_str().expect("text");
    assert!(
        authorization.contains("Credential=AKIDBASE/"),
        "signed with the base keys"
    );
    let step = world.tell(
        &mut run,
        Told::Response(assume_role_response(&expiring(
            "ASIAOPS",
            NOW + Duration::from_secs(3600),
        ))),
    );
    let Step::Ask(Ask::MfaToken(serial)) = step else {
        panic!("the admin role needs a code");
    };
    assert_eq!(serial, "arn:aws:iam::123456789012:mfa/me");
    let admin = transmitted(world.tell(&mut run, Told::MfaToken(Ok(Secret::new("123456")))));
    assert!(form(&admin).contains("TokenCode=123456"));
    assert!(
        admin.headers()["authorization"]
            .to_str()
            .expect("text")
            .contains("Credential=ASIAOPS/")
    );
    let result = world.tell(
        &mut run,
        Told::Response(assume_role_response(&expiring(
            "ASIAADMIN",
            NOW + Duration::from_secs(3600),
        ))),
    );
    assert_eq!(
        finished(result).expect("credentials").access_key_id(),
        "ASIAADMIN"
    );

    let (_, again) = world.start();
    assert_eq!(
        finished(again).expect("reused").access_key_id(),
        "ASIAADMIN"
    );
    world.now = NOW + Duration::from_secs(3600 - 60);
    let (_, near_expiry) = world.start();
    assert!(
        matches!(near_expiry, Step::Ask(Ask::Transmit(_))),
        "fetched again near expiry"
    );
}

const MFA_SESSION_ROLE: &str = "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = base\n\
mfa_serial = arn:aws:iam::123456789012:mfa/me\nmfa_session_duration = 43200\n\
[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = secret\n";

fn signer(request: &http::Request<Vec<u8>>) -> String {
    let authorization = request.headers()["authorization"].to_str().expect("text");
    authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .expect("a signer")
        .to_owned()
}

#[test]
fn a_profile_role_with_an_mfa_session_asks_one_code_for_many_refreshes() {
    let mut world = Run::new(&[], MFA_SESSION_ROLE, Some("admin"));
    let (mut run, step) = world.start();
    let Step::Ask(Ask::MfaToken(serial)) = step else {
        panic!("the MFA session needs a code")
    };
    assert_eq!(serial, "arn:aws:iam::123456789012:mfa/me");
    let session = transmitted(world.tell(&mut run, Told::MfaToken(Ok(Secret::new("123456")))));
    let asked = form(&session);
    assert!(asked.starts_with("Action=GetSessionToken"), "{asked}");
    assert!(asked.contains("DurationSeconds=43200") && asked.ends_with("TokenCode=123456"));
    assert_eq!(signer(&session), "AKIDBASE");
    let mfa = expiring("ASIAMFA", NOW + Duration::from_secs(12 * 3600));
    let admin = transmitted(world.tell(&mut run, Told::Response(session_token_response(&mfa))));
    assert!(!form(&admin).contains("TokenCode") && !form(&admin).contains("SerialNumber"));
    assert_eq!(signer(&admin), "ASIAMFA", "signed by the MFA session");
    let role = |key| {
        Told::Response(assume_role_response(&expiring(
            key,
            NOW + Duration::from_secs(3600),
        )))
    };
    finished(world.tell(&mut run, role("ASIAADMIN1"))).expect("credentials");

    // An hour later the role is assumed again with the same MFA session.
    world.now = NOW + Duration::from_secs(3600);
    let (mut run, step) = world.start();
    let again = transmitted(step);
    assert_eq!(signer(&again), "ASIAMFA", "no new code");
    finished(world.tell(&mut run, role("ASIAADMIN2"))).expect("credentials");

    // STS refuses the MFA session: one new code, then the role.
    world.now = NOW + Duration::from_secs(2 * 3600);
    let (mut run, step) = world.start();
    transmitted(step);
    let step = world.tell(
        &mut run,
        Told::Response(error_response(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        )),
    );
    assert!(matches!(step, Step::Ask(Ask::MfaToken(_))), "one new code");
    transmitted(world.tell(&mut run, Told::MfaToken(Ok(Secret::new("654321")))));
    let renewed = expiring("ASIAMFA2", NOW + Duration::from_secs(14 * 3600));
    let admin = transmitted(world.tell(&mut run, Told::Response(session_token_response(&renewed))));
    assert_eq!(signer(&admin), "ASIAMFA2");
    // Refused again: the run fails instead of asking once more.
    let step = world.tell(
        &mut run,
        Told::Response(error_response(403, "ExpiredToken", "expired")),
    );
    assert!(finished(step).is_err());
}

#[test]
fn an_mfa_session_needs_long_term_keys_and_a_device() {
    let temporary = MFA_SESSION_ROLE.replace(
        "aws_secret_access_key = secret\n",
        "aws_secret_access_key = secret\naws_session_token = token\n",
    );
    for (config, field) in [
        (temporary.as_str(), "mfa_session_duration"),
        (
            &MFA_SESSION_ROLE.replace("mfa_serial = arn:aws:iam::123456789012:mfa/me\n", ""),
            "mfa_session_duration",
        ),
        (
            &MFA_SESSION_ROLE.replace("43200", "200000"),
            "DurationSeconds",
        ),
    ] {
        let error = decide(&[], config, Some("admin")).expect_err("refused");
        assert_eq!(error.field(), field, "{error}");
    }
}

#[test]
fn web_identity_reads_the_token_then_calls_sts_unsigned() {
    let mut world = Run::new(
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod"),
        ],
        "",
        None,
    );
    let (mut run, step) = world.start();
    assert!(matches!(step, Step::Ask(Ask::ReadFile(ref path)) if path == "/var/run/token"));
    let request = transmitted(world.tell(&mut run, Told::File(Ok(b"eyJhbGciOi.token\n".to_vec()))));
    assert!(request.headers().get("authorization").is_none(), "unsigned");
    let body = form(&request);
    assert!(body.contains("Action=AssumeRoleWithWebIdentity"), "{body}");
    assert!(
        body.contains("WebIdentityToken=eyJhbGciOi.token&")
            || body.ends_with("WebIdentityToken=eyJhbGciOi.token"),
        "{body}"
    );
    let answer = web_identity_response(&expiring("ASIAWEB", NOW + Duration::from_secs(900)));
    let result = world.tell(&mut run, Told::Response(answer));
    assert_eq!(
        finished(result).expect("credentials").access_key_id(),
        "ASIAWEB"
    );

    let mut world = Run::new(
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod"),
        ],
        "",
        None,
    );
    let (mut run, _) = world.start();
    let error = finished(world.tell(&mut run, Told::File(Err("no such file".into()))))
        .expect_err("unreadable");
    assert!(error.to_string().contains("no such file"), "{error}");
}

#[test]
fn credential_process_runs_and_its_output_is_read() {
    let mut world = Run::new(&[], "[default]\ncredential_process = /opt/creds\n", None);
    let (mut run, step) = world.start();
    let Step::Ask(Ask::RunProcess(command)) = step else {
        panic!("a command");
    };
    assert_eq!(
        command
            .args
            .last()
            .map(|a| a.to_string_lossy().into_owned()),
        Some("/opt/creds".into())
    );
    let output = CommandOutput {
        status: Some(0),
        stdout: br#"{"Version":1,"AccessKeyId":"AKIDPROC","SecretAccessKey":"s"}"#.to_vec(),
        stderr: Vec::new(),
    };
    let result = world.tell(&mut run, Told::Process(Ok(output)));
    assert_eq!(
        finished(result).expect("credentials").access_key_id(),
        "AKIDPROC"
    );
}

const SSO: &str = "[default]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\n\
[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n";

#[test]
fn sso_reads_the_cache_then_asks_the_portal() {
    let mut world = Run::new(&[], SSO, None);
    let (mut run, step) = world.start();
    assert!(
        matches!(step, Step::Ask(Ask::ReadFile(ref path)) if path.starts_with("/home/me/.aws/sso/cache/"))
    );
    let request = transmitted(world.tell(
        &mut run,
        Told::File(Ok(
            br#"{"accessToken":"tok","expiresAt":"2026-11-22T13:00:00Z"}"#.to_vec(),
        )),
    ));
    assert_eq!(request.headers()["x-amz-sso_bearer_token"], "tok");
    let result = world.tell(
        &mut run,
        Told::Response(json_response(
            200,
            r#"{"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"s","sessionToken":"t","expiration":1795000000000}}"#,
        )),
    );
    assert_eq!(
        finished(result).expect("credentials").access_key_id(),
        "ASIASSO"
    );

    let mut world = Run::new(&[], SSO, None);
    let (mut run, _) = world.start();
    let error = finished(world.tell(
        &mut run,
        Told::File(Ok(
            br#"{"accessToken":"tok","expiresAt":"2026-11-22T11:00:00Z"}"#.to_vec(),
        )),
    ))
    .expect_err("expired");
    assert!(
        error
            .to_string()
            .contains("aws sso login --sso-session corp"),
        "{error}"
    );
}

#[test]
fn container_credentials_with_a_token_file() {
    let mut world = Run::new(
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9911/creds",
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/eks-token",
            ),
        ],
        "",
        None,
    );
    let (mut run, step) = world.start();
    assert!(matches!(step, Step::Ask(Ask::ReadFile(ref path)) if path == "/var/run/eks-token"));
    let request = transmitted(world.tell(&mut run, Told::File(Ok(b"pod-token\n".to_vec()))));
    assert_eq!(request.headers()["authorization"], "pod-token");
    let result = world.tell(
        &mut run,
        Told::Response(json_response(
            200,
            r#"{"AccessKeyId":"ASIAPOD","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-22T18:00:00Z"}"#,
        )),
    );
    assert_eq!(
        finished(result).expect("credentials").access_key_id(),
        "ASIAPOD"
    );
}

fn imds_token(ttl: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(b"imds-token".to_vec());
    response.headers_mut().insert(
        "x-aws-ec2-metadata-token-ttl-seconds",
        http::HeaderValue::from_str(ttl).expect("digits"),
    );
    response
}

fn imds_credentials(key: &str) -> http::Response<Vec<u8>> {
    json_response(
        200,
        &format!(
            r#"{{"Code":"Success","AccessKeyId":"{key}","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-22T12:30:00Z"}}"#
        ),
    )
}

#[test]
fn imds_keeps_its_token_and_renews_a_refused_one() {
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338")];
    let mut world = Run::new(&env, "", None);
    let (mut run, step) = world.start();
    assert_eq!(transmitted(step).method(), http::Method::PUT);
    let role = transmitted(world.tell(&mut run, Told::Response(imds_token("21600"))));
    assert_eq!(role.headers()["x-aws-ec2-metadata-token"], "imds-token");
    let get = transmitted(world.tell(&mut run, Told::Response(json_response(200, "web-role"))));
    assert!(get.uri().path().ends_with("/web-role"));
    let first = finished(world.tell(&mut run, Told::Response(imds_credentials("ASIAIMDS1"))));
    assert_eq!(first.expect("credentials").access_key_id(), "ASIAIMDS1");

    // Near expiry: the kept token goes straight to the role; the service
    // refuses it (a restart), so a new one is fetched.
    world.now = NOW + Duration::from_secs(29 * 60);
    let (mut run, step) = world.start();
    assert_eq!(
        transmitted(step).method(),
        http::Method::GET,
        "the token is kept"
    );
    let put = transmitted(world.tell(&mut run, Told::Response(json_response(401, ""))));
    assert_eq!(put.method(), http::Method::PUT);
    transmitted(world.tell(&mut run, Told::Response(imds_token("21600"))));
    transmitted(world.tell(&mut run, Told::Response(json_response(200, "web-role"))));
    let second = finished(world.tell(&mut run, Told::Response(imds_credentials("ASIAIMDS2"))));
    assert_eq!(second.expect("credentials").access_key_id(), "ASIAIMDS2");
}

#[test]
fn imds_failures_list_every_source_tried() {
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338")];
    let mut world = Run::new(&env, "", None);
    world.retry = RetryPolicy::new(1, Duration::from_secs(30)).expect("valid");
    let (mut run, _) = world.start();
    let error = finished(world.tell(
        &mut run,
        Told::Transport(TransportError::new(
            TransportErrorKind::Connect,
            "connection refused",
        )),
    ))
    .expect_err("no IMDS");
    match &error {
        Error::Chain(ChainError::NotFound(tried)) => {
            assert_eq!(tried.len(), 5, "{error}");
            assert!(tried[4].reason.contains("connection refused"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let mut world = Run::new(&env, "", None);
    let (mut run, _) = world.start();
    transmitted(world.tell(&mut run, Told::Response(imds_token("21600"))));
    let error = finished(world.tell(&mut run, Told::Response(json_response(404, ""))))
        .expect_err("no role");
    assert!(error.to_string().contains("no IAM role"), "{error}");
}

#[test]
fn failed_exchanges_are_retried_after_a_backoff() {
    let mut world = Run::new(&[], ROLES, Some("admin"));
    world.jitter = 1.0;
    let (mut run, step) = world.start();
    transmitted(step);
    let step = world.tell(
        &mut run,
        Told::Response(error_response(400, "Throttling", "Rate exceeded")),
    );
    assert!(matches!(step, Step::Wait));
    assert_eq!(
        run.wake_at(),
        Some(NOW + Duration::from_secs(1)),
        "the first backoff"
    );
    assert!(world.timeout(&mut run).is_none(), "not yet");
    world.now = NOW + Duration::from_secs(1);
    let again = transmitted(world.timeout(&mut run).expect("the retry"));
    assert!(form(&again).contains("role%2Fops"));
    let step = world.tell(
        &mut run,
        Told::Response(error_response(403, "AccessDenied", "no")),
    );
    let error = finished(step).expect_err("not retried");
    assert!(error.to_string().contains("AccessDenied"), "{error}");
}

#[test]
fn nothing_found_is_a_typed_error() {
    let mut world = Run::new(&[("AWS_EC2_METADATA_DISABLED", "true")], "", None);
    let (_, step) = world.start();
    match finished(step) {
        Err(Error::Chain(ChainError::NotFound(tried))) => assert_eq!(tried.len(), 5),
        other => panic!("{other:?}"),
    }
}
