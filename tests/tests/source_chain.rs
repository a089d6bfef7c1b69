//! The default credential chain against real-format files in a temporary
//! HOME and real peers: moto for role profiles (SigV4 verified), a real
//! `credential_process` script, the loopback SSO portal, STS (web
//! identity), container endpoint and IMDS, and botocore resolving the same
//! environment and files as an independent oracle. Every session reads the
//! test's environment (`environment(..)`), never the process's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use refresh_session_core::Error;
use refresh_session_core::error::{ChainError, SourceKind};
use refresh_session_tests::chain_oracle::botocore_resolve;
use refresh_session_tests::container_server::LoopbackContainer;
use refresh_session_tests::imds_server::LoopbackImds;
use refresh_session_tests::moto::Moto;
use refresh_session_tests::sso_server::LoopbackSso;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A temporary HOME with `~/.aws` files, and the environment a session and
/// botocore see: HOME, IMDS off unless a test turns it on.
struct Home {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let env = BTreeMap::from([
            ("HOME".to_owned(), dir.path().display().to_string()),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ]);
        Self { dir, env }
    }

    fn var(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    fn unset(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }

    /// Writes `text` at `path` under HOME.
    fn file(&self, path: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
        std::fs::write(&path, text).expect("written");
        path
    }

    fn config(&self, text: &str) -> &Self {
        self.file(".aws/config", text);
        self
    }

    fn credentials(&self, text: &str) -> &Self {
        self.file(".aws/credentials", text);
        self
    }

    /// An executable shell script under HOME.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.file(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}\n"));
        let mut permissions = std::fs::metadata(&path).expect("written").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).expect("executable");
        path
    }

    fn env(&self) -> Vec<(String, String)> {
        self.env.clone().into_iter().collect()
    }

    /// Checks that ours and botocore resolve the same access key.
    fn assert_agrees_with_botocore(&self, profile: Option<&str>, ours: &str) {
        let theirs = botocore_resolve(&self.env, profile, false)
            .unwrap_or_else(|e| panic!("botocore failed ({profile:?}): {e}"));
        assert_eq!(
            ours, theirs.access_key,
            "profile {profile:?}: ours vs botocore"
        );
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .expect("valid")
        .format(&Rfc3339)
        .expect("formats")
}

/// A HOME with an `sso-session` profile whose portal and OIDC service are
/// `portal`.
fn sso_home(portal: &LoopbackSso) -> Home {
    let mut home = Home::new();
    home.var("AWS_ENDPOINT_URL_SSO", &portal.url())
        .var("AWS_ENDPOINT_URL_SSO_OIDC", &portal.url());
    home.config(
        "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\nregion = eu-west-1\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n",
    );
    home
}

/// Writes the `corp` login to the token cache as `aws sso login` does:
/// `access_token` expiring in `expires_in`, with a registration and a
/// refresh token from `portal`. Returns the file.
fn write_login(
    home: &Home,
    portal: &LoopbackSso,
    access_token: &str,
    expires_in: Duration,
) -> PathBuf {
    let (client_id, client_secret, refresh_token) = portal.registered_login();
    let now = OffsetDateTime::now_utc();
    home.file(
        &format!(".aws/sso/cache/{}.json", sha1_hex("corp")),
        &serde_json::json!({
            "startUrl": "https://corp.awsapps.com/start",
            "region": "eu-west-1",
            "accessToken": access_token,
            "expiresAt": rfc3339(now + expires_in),
            "clientId": client_id,
            "clientSecret": client_secret,
            "registrationExpiresAt": rfc3339(now + Duration::from_secs(90 * 86_400)),
            "refreshToken": refresh_token,
        })
        .to_string(),
    )
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("readable")).expect("JSON")
}

fn chain_error(error: &Error) -> &ChainError {
    match error {
        Error::Chain(chain) => chain,
        Error::Source(inner) => chain_error(inner),
        other => panic!("a chain error, not {other:?}"),
    }
}

mod blocking {
    use refresh_session_blocking::prelude::*;
    use refresh_session_blocking::{Builder, RefreshableSession};

    use super::*;

    fn chain(home: &Home) -> Builder {
        RefreshableSession::default_chain().environment(home.env())
    }

    fn key(builder: Builder) -> String {
        let session = builder.build().expect("valid");
        session
            .credentials()
            .expect("credentials")
            .access_key_id()
            .to_owned()
    }

    #[test]
    fn static_keys_and_their_precedence_match_botocore() {
        let mut home = Home::new();
        home.config(
            "[profile dev]\naws_access_key_id = AKIDDEVCONFIG\naws_secret_access_key = s\n\
             [profile tok]\naws_access_key_id = AKIDTOKEN\naws_secret_access_key = s\naws_session_token = t\n",
        )
        .credentials(
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n\
             [dev]\naws_access_key_id = AKIDDEVCREDS\naws_secret_access_key = s\n",
        );
        assert_eq!(key(chain(&home)), "AKIDDEFAULT");
        home.assert_agrees_with_botocore(None, "AKIDDEFAULT");
        assert_eq!(key(chain(&home).profile_name("tok")), "AKIDTOKEN");
        home.assert_agrees_with_botocore(Some("tok"), "AKIDTOKEN");

        home.var("AWS_PROFILE", "dev");
        assert_eq!(
            key(chain(&home)),
            "AKIDDEVCREDS",
            "the credentials file wins"
        );
        home.assert_agrees_with_botocore(None, "AKIDDEVCREDS");

        home.var("AWS_ACCESS_KEY_ID", "AKIDENV")
            .var("AWS_SECRET_ACCESS_KEY", "s");
        assert_eq!(key(chain(&home)), "AKIDENV", "the environment first");
        home.assert_agrees_with_botocore(None, "AKIDENV");
        assert_eq!(
            key(chain(&home).profile_name("dev")),
            "AKIDDEVCREDS",
            "unless a profile is named"
        );
        home.assert_agrees_with_botocore(Some("dev"), "AKIDDEVCREDS");
    }

    #[test]
    fn role_profiles_chain_through_moto_as_botocore_does() {
        let moto = Moto::start();
        let mut home = Home::new();
        // botocore reads AWS_DEFAULT_REGION, not AWS_REGION.
        home.var("AWS_ENDPOINT_URL_STS", moto.url())
            .var("AWS_DEFAULT_REGION", "us-east-1");
        home.credentials(&format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.access_key_id, moto.secret_access_key
        ))
        .config(&format!(
            "[profile ops]\nrole_arn = {}\nsource_profile = base\nrole_session_name = ops-hop\n\
             [profile admin]\nrole_arn = {}\nsource_profile = ops\nrole_session_name = admin-hop\n",
            moto.role_arn, moto.chained_role_arn
        ));
        let session = chain(&home).profile_name("admin").build().expect("valid");
        let ours = session.whoami().expect("whoami").arn;
        assert!(ours.ends_with("/admin-hop"), "{ours}");
        let theirs = botocore_resolve(&home.env, Some("admin"), true).expect("botocore");
        assert_eq!(Some(ours), theirs.arn, "the same assumed role");

        // An STS session whose source is the chain: every call signed and
        // verified by moto.
        home.var("AWS_PROFILE", "ops");
        let session = RefreshableSession::sts(
            AssumeRole::new(moto.chained_role_arn.clone()).role_session_name("on-top"),
        )
        .environment(home.env())
        .build()
        .expect("valid");
        assert!(session.whoami().expect("whoami").arn.ends_with("/on-top"));
    }

    #[test]
    fn bad_profiles_are_typed_errors_at_build() {
        let home = Home::new();
        home.config(
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n\
             [profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = a\n",
        );
        let config_error = |builder: Builder| match builder.build() {
            Err(Error::Config(error)) => error,
            other => panic!("a configuration error, not {other:?}"),
        };
        let cycle = config_error(chain(&home).profile_name("a"));
        assert_eq!(cycle.field(), "source_profile");
        assert!(cycle.problem().contains("a -> b -> a"), "{cycle}");
        let theirs =
            botocore_resolve(&home.env, Some("a"), false).expect_err("botocore refuses it too");
        assert!(theirs.contains("InfiniteLoop"), "{theirs}");

        assert_eq!(
            config_error(chain(&home).profile_name("ghost")).field(),
            "profile_name"
        );

        home.config("[default]\nregion = eu-west-1\nthis line has no equals sign\n");
        let malformed = config_error(chain(&home));
        let file = malformed.profile_file().expect("a file error");
        assert_eq!(file.line, 3);
        assert!(file.file.ends_with(".aws/config"), "{}", file.file);
    }

    #[test]
    fn credential_process_runs_a_real_script_again_when_its_output_expires() {
        let home = Home::new();
        let counter = home.dir.path().join("runs");
        let script = home.script(
            "creds",
            &format!(
                "n=$(($(cat {0} 2>/dev/null || echo 0) + 1)); echo $n > {0}\n\
                 printf '{{\"Version\":1,\"AccessKeyId\":\"AKIDPROC%d\",\"SecretAccessKey\":\"s\",\"SessionToken\":\"t\",\"Expiration\":\"%s\"}}' \
                 $n $(date -u -d '+4 seconds' +%Y-%m-%dT%H:%M:%SZ)",
                counter.display()
            ),
        );
        let fixed = home.script(
            "fixed",
            r#"echo '{"Version":1,"AccessKeyId":"AKIDFIXED","SecretAccessKey":"s"}'"#,
        );
        let failing = home.script("failing", "echo 'token expired, log in again' >&2; exit 3");
        home.config(&format!(
            "[default]\ncredential_process = {}\n[profile fixed]\ncredential_process = {}\n[profile failing]\ncredential_process = {}\n",
            script.display(),
            fixed.display(),
            failing.display()
        ));
        let session = chain(&home)
            .advisory_timeout(Duration::from_secs(2))
            .mandatory_timeout(Duration::from_secs(1))
            .build()
            .expect("valid");
        let deadline = Instant::now() + TEST_LIMIT;
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            assert!(Instant::now() < deadline, "no second run: {seen:?}");
            let credentials = session.credentials().expect("credentials");
            let expiration = credentials.expiration().expect("the script sets one");
            assert!(expiration > OffsetDateTime::now_utc(), "never expired");
            seen.insert(credentials.access_key_id().to_owned());
            std::thread::sleep(Duration::from_millis(100));
        }

        assert_eq!(key(chain(&home).profile_name("fixed")), "AKIDFIXED");
        home.assert_agrees_with_botocore(Some("fixed"), "AKIDFIXED");

        let session = chain(&home).profile_name("failing").build().expect("valid");
        let error = session.credentials().expect_err("the script fails");
        match chain_error(&error) {
            ChainError::Failed { kind, problem } => {
                assert_eq!(*kind, SourceKind::Process);
                assert!(
                    problem.contains("exited with code 3: token expired"),
                    "{problem}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sso_with_a_valid_and_an_expired_token() {
        let portal = LoopbackSso::start("sso-access-token", Duration::from_secs(3600));
        let mut home = Home::new();
        home.var("AWS_ENDPOINT_URL_SSO", &portal.url());
        home.config(
            "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\nregion = eu-west-1\n\
             [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
             [profile legacy]\nsso_start_url = https://d-abc123.awsapps.com/start\nsso_region = eu-west-1\n\
             sso_account_id = 123456789012\nsso_role_name = Admin\nregion = eu-west-1\n",
        );
        let cache = |key: &str, expires: OffsetDateTime, start_url: &str| {
            let hex = sha1_hex(key);
            home.file(
                &format!(".aws/sso/cache/{hex}.json"),
                &format!(
                    r#"{{"startUrl":"{start_url}","region":"eu-west-1","accessToken":"sso-access-token","expiresAt":"{}"}}"#,
                    rfc3339(expires)
                ),
            );
        };
        let hour = Duration::from_secs(3600);
        cache(
            "corp",
            OffsetDateTime::now_utc() + hour,
            "https://corp.awsapps.com/start",
        );
        cache(
            "https://d-abc123.awsapps.com/start",
            OffsetDateTime::now_utc() + hour,
            "https://d-abc123.awsapps.com/start",
        );
        assert_eq!(key(chain(&home).profile_name("sso")), "ASIASSOREADONLY9012");
        home.assert_agrees_with_botocore(Some("sso"), "ASIASSOREADONLY9012");
        assert_eq!(key(chain(&home).profile_name("legacy")), "ASIASSOADMIN9012");
        home.assert_agrees_with_botocore(Some("legacy"), "ASIASSOADMIN9012");

        cache(
            "corp",
            OffsetDateTime::now_utc() - hour,
            "https://corp.awsapps.com/start",
        );
        let error = chain(&home)
            .profile_name("sso")
            .build()
            .expect("valid")
            .credentials()
            .expect_err("the login expired");
        assert!(
            error
                .to_string()
                .contains("aws sso login --sso-session corp"),
            "{error}"
        );
        botocore_resolve(&home.env, Some("sso"), false).expect_err("botocore refuses it too");
    }

    #[test]
    fn an_sso_login_near_its_end_is_renewed_and_written_back_for_botocore() {
        let portal = LoopbackSso::start("sso-access-token-0", Duration::from_secs(3600));
        let home = sso_home(&portal);
        let file = write_login(
            &home,
            &portal,
            "sso-access-token-0",
            Duration::from_secs(300),
        );
        let before = read_json(&file);
        assert_eq!(key(chain(&home).profile_name("sso")), "ASIASSOREADONLY9012");
        assert_eq!(portal.renewals(), 1, "five minutes left: renewed first");
        let after = read_json(&file);
        assert_ne!(after["accessToken"], before["accessToken"]);
        assert_ne!(after["refreshToken"], before["refreshToken"], "rotated");
        for kept in [
            "startUrl",
            "region",
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
        ] {
            assert_eq!(after[kept], before[kept], "{kept}");
        }
        let expires = OffsetDateTime::parse(after["expiresAt"].as_str().expect("text"), &Rfc3339)
            .expect("the AWS CLI's format");
        assert!(expires > OffsetDateTime::now_utc() + Duration::from_secs(7 * 3600));
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&file).expect("exists").permissions()
            ) & 0o777,
            0o600
        );
        // The portal no longer takes the old token: botocore gets the role's
        // credentials with the one written back, without renewing again.
        portal.revoke("sso-access-token-0");
        home.assert_agrees_with_botocore(Some("sso"), "ASIASSOREADONLY9012");
        assert_eq!(portal.renewals(), 1);
    }

    #[test]
    fn a_login_botocore_renewed_is_read_and_a_failed_renewal_says_to_log_in() {
        let portal = LoopbackSso::start("sso-access-token-0", Duration::from_secs(3600));
        let home = sso_home(&portal);
        let file = write_login(
            &home,
            &portal,
            "sso-access-token-0",
            Duration::from_secs(300),
        );
        // botocore renews the login against the loopback OIDC service (the
        // oracle of its wire format) and writes the cache...
        portal.revoke("sso-access-token-0");
        home.assert_agrees_with_botocore(Some("sso"), "ASIASSOREADONLY9012");
        assert_eq!(portal.renewals(), 1, "botocore renewed");
        // ...which we read as it wrote it, with no renewal of our own.
        assert_eq!(key(chain(&home).profile_name("sso")), "ASIASSOREADONLY9012");
        assert_eq!(portal.renewals(), 1);
        // An expired login whose refresh token is refused: log in again.
        let mut expired = read_json(&file);
        expired["expiresAt"] = rfc3339(OffsetDateTime::now_utc() - Duration::from_secs(60)).into();
        expired["refreshToken"] = "a-refresh-token-already-used".into();
        std::fs::write(&file, expired.to_string()).expect("written");
        let session = chain(&home).profile_name("sso").build().expect("valid");
        let error = session.credentials().expect_err("refused");
        let ChainError::Failed { problem, .. } = chain_error(&error) else {
            panic!("{error:?}")
        };
        assert!(
            problem.contains("renewing it failed")
                && problem.contains("aws sso login --sso-session corp"),
            "{problem}"
        );
    }

    #[test]
    fn web_identity_from_the_environment_matches_botocore() {
        let sts = LoopbackSts::start(StsOptions {
            lifetime: Duration::from_secs(3600),
            delay: Duration::ZERO,
        });
        let mut home = Home::new();
        // No trailing newline: botocore sends the file as it is.
        let token = home.file("token", "eyJhbGciOiJSUzI1NiJ9.pod-identity.sig");
        home.var("AWS_WEB_IDENTITY_TOKEN_FILE", &token.display().to_string())
            .var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod")
            .var("AWS_ROLE_SESSION_NAME", "pod-7")
            .var("AWS_ENDPOINT_URL_STS", &sts.url())
            .var("AWS_REGION", "us-east-1");
        let ours = key(chain(&home));
        assert!(ours.starts_with("ASIAWEB"), "{ours}");
        home.assert_agrees_with_botocore(None, &ours);
        let request = sts
            .requests()
            .into_iter()
            .find(|form| {
                form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity")
            })
            .expect("a web identity call");
        assert_eq!(
            request["WebIdentityToken"],
            "eyJhbGciOiJSUzI1NiJ9.pod-identity.sig"
        );
        assert_eq!(request["RoleSessionName"], "pod-7");
    }

    #[test]
    fn container_credentials_refresh_and_a_wrong_token_is_refused() {
        let endpoint = LoopbackContainer::start("pod-token", Duration::from_secs(4));
        let mut home = Home::new();
        let token = home.file("eks-token", "pod-token\n");
        home.var("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.url())
            .var(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                &token.display().to_string(),
            );
        let session = chain(&home)
            .advisory_timeout(Duration::from_secs(1))
            .mandatory_timeout(Duration::from_millis(500))
            .build()
            .expect("valid");
        let deadline = Instant::now() + TEST_LIMIT;
        while endpoint.issued().len() < 3 {
            assert!(Instant::now() < deadline, "no refreshes");
            let credentials = session.credentials().expect("credentials");
            assert!(credentials.access_key_id().starts_with("ASIACONTAINER"));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(endpoint.refused(), 0);

        home.unset("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .var("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stolen");
        let error = chain(&home)
            .build()
            .expect("valid")
            .credentials()
            .expect_err("refused");
        assert!(error.to_string().contains("AccessDenied"), "{error}");
        assert_eq!(endpoint.refused(), 1);
    }

    #[test]
    fn imds_renews_an_expired_token_and_names_a_missing_role() {
        let imds = LoopbackImds::start(Some("web-role"), Duration::from_secs(4));
        let mut home = Home::new();
        home.unset("AWS_EC2_METADATA_DISABLED")
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
        let session = chain(&home)
            .advisory_timeout(Duration::from_secs(1))
            .mandatory_timeout(Duration::from_millis(500))
            .build()
            .expect("valid");
        session.credentials().expect("credentials");
        assert_eq!(imds.token_requests(), 1);
        imds.expire_tokens();
        let deadline = Instant::now() + TEST_LIMIT;
        while imds.issued().len() < 2 {
            assert!(Instant::now() < deadline, "no refresh");
            session
                .credentials()
                .expect("credentials across the token's expiry");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            imds.token_requests(),
            2,
            "one new token after the old was refused"
        );

        let bare = LoopbackImds::start(None, Duration::from_secs(60));
        home.var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &bare.endpoint());
        let error = chain(&home)
            .build()
            .expect("valid")
            .credentials()
            .expect_err("no role");
        match chain_error(&error) {
            ChainError::NotFound(tried) => {
                let imds = tried.last().expect("IMDS last");
                assert_eq!(imds.kind, SourceKind::Imds);
                assert!(imds.reason.contains("no IAM role"), "{}", imds.reason);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_found_lists_every_source_and_why() {
        let home = Home::new();
        let error = chain(&home)
            .build()
            .expect("valid")
            .credentials()
            .expect_err("nothing");
        match chain_error(&error) {
            ChainError::NotFound(tried) => {
                let kinds: Vec<SourceKind> = tried.iter().map(|s| s.kind).collect();
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
            other => panic!("{other:?}"),
        }
        assert_eq!(
            botocore_resolve(&home.env, None, false).expect_err("nothing for botocore either"),
            "NoCredentials"
        );
    }

    #[test]
    fn a_profile_role_with_mfa_uses_the_sessions_token_provider() {
        let sts = LoopbackSts::start(StsOptions {
            lifetime: Duration::from_secs(3600),
            delay: Duration::ZERO,
        });
        let home = Home::new();
        home.config(
            "[profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/guarded\nsource_profile = base\n\
             mfa_serial = arn:aws:iam::123456789012:mfa/alice\nregion = us-east-1\n",
        )
        .credentials("[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n");
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let session = {
            let asked = asked.clone();
            chain(&home)
                .profile_name("mfa")
                .endpoint_url(sts.url())
                .mfa_token_provider(move |serial| {
                    asked.lock().expect("lock").push(serial.to_owned());
                    Ok("123456".to_owned())
                })
                .build()
                .expect("valid")
        };
        session.credentials().expect("credentials");
        assert_eq!(
            *asked.lock().expect("lock"),
            ["arn:aws:iam::123456789012:mfa/alice"]
        );
        let call = &sts.requests()[0];
        assert_eq!(call["SerialNumber"], "arn:aws:iam::123456789012:mfa/alice");
        assert_eq!(call["TokenCode"], "123456");

        match chain(&home)
            .profile_name("mfa")
            .endpoint_url(sts.url())
            .build()
        {
            Err(Error::Config(error)) => assert_eq!(error.field(), "mfa_serial"),
            other => panic!("MFA without a provider: {other:?}"),
        }
    }

    #[test]
    fn the_region_comes_from_the_profile() {
        let home = Home::new();
        home.credentials("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n");
        let build = || {
            RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/r"))
                .environment(home.env())
                .build()
        };
        match build() {
            Err(Error::Config(error)) => assert_eq!(error.field(), "region"),
            other => panic!("no region anywhere: {other:?}"),
        }
        home.config("[default]\nregion = ap-southeast-2\n");
        build().expect("the profile's region is enough");
    }
}

mod tokio_adapter {
    use refresh_session_tokio::prelude::*;
    use refresh_session_tokio::{Builder, RefreshableSession};

    use super::*;

    fn chain(home: &Home) -> Builder {
        RefreshableSession::default_chain().environment(home.env())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_running_session_outlives_its_sso_access_tokens() {
        // Role credentials live a second, access tokens three: every few
        // refreshes renew the login, and the session never fails.
        let portal = LoopbackSso::start("sso-access-token-0", Duration::from_secs(1));
        portal.set_token_lifetime(Duration::from_secs(3));
        let home = sso_home(&portal);
        write_login(&home, &portal, "sso-access-token-0", Duration::from_secs(2));
        let session = chain(&home)
            .profile_name("sso")
            .build()
            .await
            .expect("valid");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            let credentials = tokio::time::timeout(TEST_LIMIT, session.credentials())
                .await
                .expect("within the limit")
                .expect("credentials");
            assert_eq!(credentials.access_key_id(), "ASIASSOREADONLY9012");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            portal.renewals() >= 2,
            "renewed {} times",
            portal.renewals()
        );
        assert!(
            portal.calls().len() >= 4,
            "{} role refreshes",
            portal.calls().len()
        );
    }

    #[tokio::test]
    async fn files_processes_and_metadata_requests_run_off_the_runtime() {
        let home = Home::new();
        let script = home.script(
            "creds",
            r#"echo '{"Version":1,"AccessKeyId":"AKIDTOKIO","SecretAccessKey":"s"}'"#,
        );
        home.config(&format!(
            "[default]\ncredential_process = {}\n",
            script.display()
        ));
        let session = chain(&home).build().await.expect("valid");
        let credentials = session.credentials().await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "AKIDTOKIO");

        let imds = LoopbackImds::start(Some("web-role"), Duration::from_secs(60));
        let mut home = Home::new();
        home.unset("AWS_EC2_METADATA_DISABLED")
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint());
        let session = chain(&home).build().await.expect("valid");
        let credentials = session.credentials().await.expect("credentials");
        assert!(credentials.access_key_id().starts_with("ASIAIMDS"));

        let portal = LoopbackSso::start("sso-access-token", Duration::from_secs(3600));
        let mut home = Home::new();
        home.var("AWS_ENDPOINT_URL_SSO", &portal.url());
        home.config(
            "[default]\nsso_start_url = https://d-abc123.awsapps.com/start\nsso_region = eu-west-1\n\
             sso_account_id = 123456789012\nsso_role_name = Admin\n",
        );
        home.file(
            &format!(
                ".aws/sso/cache/{}.json",
                sha1_hex("https://d-abc123.awsapps.com/start")
            ),
            &format!(
                r#"{{"accessToken":"sso-access-token","expiresAt":"{}"}}"#,
                rfc3339(OffsetDateTime::now_utc() + Duration::from_secs(3600))
            ),
        );
        let session = chain(&home).build().await.expect("valid");
        let credentials = session.credentials().await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "ASIASSOADMIN9012");
    }
}

/// The SHA-1 of `text` in hex, as the AWS CLI names SSO cache files
/// (computed here by `sha1sum`, not by the code under test).
fn sha1_hex(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha1sum runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .expect("written");
    let output = child.wait_with_output().expect("sha1sum ends");
    String::from_utf8(output.stdout)
        .expect("text")
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}
