use std::collections::HashMap;

use time::macros::datetime;

use super::*;
use crate::profile::ProfileFile;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

struct Setup {
    env: HashMap<String, String>,
    config: String,
    credentials: String,
    profile_name: Option<&'static str>,
}

fn setup(config: &str, credentials: &str) -> Setup {
    Setup {
        env: HashMap::from([("HOME".to_owned(), "/home/me".to_owned())]),
        config: config.to_owned(),
        credentials: credentials.to_owned(),
        profile_name: None,
    }
}

impl Setup {
    fn var(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    fn named(mut self, profile: &'static str) -> Self {
        self.profile_name = Some(profile);
        self
    }

    fn decide(&self) -> Result<SourcePlan, ConfigError> {
        let file = |path: &str, text: &str| ProfileFile {
            path: path.to_owned(),
            text: text.to_owned(),
        };
        let profiles = ProfileSet::parse(
            Some(&file("config", &self.config)),
            Some(&file("credentials", &self.credentials)),
        )
        .expect("valid files");
        let env = |key: &str| self.env.get(key).cloned();
        SourcePlan::decide(&ChainInputs {
            env: &env,
            profiles: &profiles,
            profile_name: self.profile_name,
            now: NOW,
            mfa_session: None,
            loopback: false,
        })
    }

    fn plan(&self) -> SourcePlan {
        self.decide().expect("a valid configuration")
    }

    fn error(&self) -> ConfigError {
        self.decide().expect_err("an invalid configuration")
    }
}

fn static_key(plan: &SourcePlan) -> &str {
    match &plan.base {
        Base::Static(credentials) => credentials.access_key_id(),
        other => panic!("static keys, not {other:?}"),
    }
}

fn roles(plan: &SourcePlan) -> Vec<&str> {
    plan.hops.iter().map(|hop| hop.params.role_arn()).collect()
}

const KEYS: &str = "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = secret\n";

#[test]
fn environment_keys_come_first_unless_a_profile_is_named() {
    let s = setup("", KEYS)
        .var("AWS_ACCESS_KEY_ID", "AKIDENV")
        .var("AWS_SECRET_ACCESS_KEY", "secret");
    assert_eq!(static_key(&s.plan()), "AKIDENV");
    assert_eq!(s.plan().description, "environment");
    let named = s.named("default").plan();
    assert_eq!(static_key(&named), "AKIDFILE");
    assert_eq!(named.description, "profile `default`");
}

#[test]
fn web_identity_from_the_environment() {
    let plan = setup("", KEYS)
        .var("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")
        .var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod")
        .var("AWS_ROLE_SESSION_NAME", "pod-7")
        .plan();
    match plan.base {
        Base::WebIdentity {
            token_file,
            role_arn,
            session_name,
        } => assert_eq!(
            (
                token_file.as_str(),
                role_arn.as_str(),
                session_name.as_str()
            ),
            (
                "/var/run/token",
                "arn:aws:iam::123456789012:role/pod",
                "pod-7"
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn static_keys_with_a_session_token() {
    let plan = setup(
        "",
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s\naws_session_token = t\n",
    )
    .var("AWS_PROFILE", "dev")
    .plan();
    match plan.base {
        Base::Static(credentials) => {
            assert_eq!(credentials.access_key_id(), "AKIDDEV");
            assert!(credentials.session_token().is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn role_profiles_chain_through_source_profiles() {
    let plan = setup(
        "[profile admin]\n\
         role_arn = arn:aws:iam::123456789012:role/admin\n\
         source_profile = ops\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/me\n\
         external_id = ext-1\n\
         duration_seconds = 1800\n\
         [profile ops]\n\
         role_arn = arn:aws:iam::123456789012:role/ops\n\
         source_profile = default\n\
         role_session_name = ops-session\n",
        KEYS,
    )
    .named("admin")
    .plan();
    assert_eq!(static_key(&plan), "AKIDFILE");
    assert_eq!(
        roles(&plan),
        [
            "arn:aws:iam::123456789012:role/ops",
            "arn:aws:iam::123456789012:role/admin"
        ],
        "the innermost role first"
    );
    assert_eq!(plan.hops[0].params.session_name(), Some("ops-session"));
    let admin = &plan.hops[1].params;
    assert_eq!(admin.mfa_serial(), Some("arn:aws:iam::123456789012:mfa/me"));
    assert!(format!("{admin:?}").contains("1800s"), "{admin:?}");
}

#[test]
fn a_profile_may_assume_its_role_with_its_own_keys() {
    let plan = setup(
        "[profile self]\nrole_arn = arn:aws:iam::123456789012:role/self\nsource_profile = self\n",
        "[self]\naws_access_key_id = AKIDSELF\naws_secret_access_key = s\n",
    )
    .named("self")
    .plan();
    assert_eq!(static_key(&plan), "AKIDSELF");
    assert_eq!(roles(&plan), ["arn:aws:iam::123456789012:role/self"]);
}

#[test]
fn cycles_missing_sources_and_bad_values_are_named() {
    let cycle = setup(
        "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n\
         [profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = a\n",
        "",
    )
    .named("a")
    .error();
    assert_eq!(cycle.field(), "source_profile");
    assert!(cycle.problem().contains("a -> b -> a"), "{cycle}");

    let cases = [
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = ghost\n",
            "source_profile",
            "`ghost`",
        ),
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\n",
            "source_profile",
            "needs source_profile",
        ),
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\ncredential_source = Magic\n",
            "credential_source",
            "`Magic`",
        ),
        (
            "[profile a]\nrole_arn = not-an-arn\nsource_profile = default\n",
            "RoleArn",
            "in profile `a`",
        ),
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = default\nduration_seconds = long\n",
            "duration_seconds",
            "not a number",
        ),
        (
            "[profile a]\naws_access_key_id = AKID\n",
            "aws_secret_access_key",
            "in profile `a`",
        ),
    ];
    for (config, field, problem) in cases {
        let error = setup(config, KEYS).named("a").error();
        assert_eq!(error.field(), field, "{config}");
        assert!(error.problem().contains(problem), "{error}");
    }
}

#[test]
fn credential_sources() {
    let role = "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\ncredential_source = ";
    let plan = setup(&format!("{role}Environment\n"), "")
        .var("AWS_ACCESS_KEY_ID", "AKIDENV")
        .var("AWS_SECRET_ACCESS_KEY", "s")
        .named("a")
        .plan();
    assert_eq!(static_key(&plan), "AKIDENV");
    let plan = setup(&format!("{role}Ec2InstanceMetadata\n"), "")
        .named("a")
        .plan();
    assert!(matches!(plan.base, Base::Imds(_)), "{:?}", plan.base);
    let plan = setup(&format!("{role}EcsContainer\n"), "")
        .var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")
        .named("a")
        .plan();
    assert!(matches!(plan.base, Base::Container(_)), "{:?}", plan.base);
    let error = setup(&format!("{role}EcsContainer\n"), "")
        .named("a")
        .error();
    assert_eq!(error.field(), "credential_source");
}

#[test]
fn sso_profiles_find_their_token_cache() {
    let plan = setup(
        "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n",
        "",
    )
    .named("sso")
    .plan();
    let Base::Sso(sso) = &plan.base else {
        panic!("{:?}", plan.base);
    };
    assert_eq!(
        sso.cache_file,
        format!(
            "/home/me/.aws/sso/cache/{}",
            crate::sso_token::cache_file_name("corp")
        )
    );
    assert!(
        sso.login_again("x")
            .to_string()
            .contains("--sso-session corp")
    );

    let legacy = setup(
        "[profile old]\nsso_start_url = https://d-abc123.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Admin\n",
        "",
    )
    .named("old")
    .plan();
    let Base::Sso(sso) = &legacy.base else {
        panic!("{:?}", legacy.base);
    };
    assert!(
        sso.cache_file
            .ends_with("40a89917e3175433e361b710a9d43528d7f1890a.json")
    );
    assert!(sso.login_again("x").to_string().contains("--profile old"));

    for (config, field) in [
        (
            "[profile s]\nsso_session = nowhere\nsso_account_id = 123456789012\nsso_role_name = R\n",
            "sso_session",
        ),
        (
            "[profile s]\nsso_start_url = https://x\nsso_region = us-east-1\nsso_role_name = R\n",
            "sso_account_id",
        ),
        (
            "[profile s]\nsso_start_url = https://x\nsso_region = us-east-1\nsso_account_id = 12\nsso_role_name = R\n",
            "sso_account_id",
        ),
        (
            // It goes into the portal's host name.
            "[profile s]\nsso_start_url = https://x\nsso_region = evil.example/x\nsso_account_id = 123456789012\nsso_role_name = R\n",
            "sso_region",
        ),
    ] {
        assert_eq!(
            setup(config, "").named("s").error().field(),
            field,
            "{config}"
        );
    }
}

#[test]
fn credential_process_profiles() {
    let plan = setup(
        "[default]\ncredential_process = /opt/bin/creds --json\n",
        "",
    )
    .plan();
    match plan.base {
        Base::Process(line) => assert_eq!(line, "/opt/bin/creds --json"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_credentials_the_chain_moves_on_and_lists_why() {
    let plan = setup("[default]\nregion = eu-west-1\n", "")
        .var(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9911/creds",
        )
        .plan();
    assert!(matches!(plan.base, Base::Container(_)), "{:?}", plan.base);
    let plan = setup("", "")
        .var("AWS_EC2_METADATA_DISABLED", "true")
        .plan();
    assert!(matches!(plan.base, Base::Nothing));
    let kinds: Vec<SourceKind> = plan.passed_over.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SourceKind::Environment,
            SourceKind::WebIdentity,
            SourceKind::Profile,
            SourceKind::Container,
            SourceKind::Imds
        ]
    );
}

#[test]
fn a_named_profile_must_exist() {
    assert_eq!(
        setup("", KEYS).named("ghost").error().field(),
        "profile_name"
    );
    assert_eq!(
        setup("", KEYS).var("AWS_PROFILE", "ghost").error().field(),
        "AWS_PROFILE"
    );
}
