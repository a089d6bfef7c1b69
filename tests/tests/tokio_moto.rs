//! The async session against moto's STS, which verifies SigV4 signatures:
//! reqwest over loopback, assume role, whoami, MFA, custom.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use refresh_session_tests::moto::Moto;
use refresh_session_tokio::error::ErrorCode;
use refresh_session_tokio::prelude::*;
use refresh_session_tokio::{Builder, Error};
use time::OffsetDateTime;

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/tester";

fn session(moto: &Moto, params: AssumeRole) -> Builder {
    RefreshableSession::sts(params)
        .region("us-east-1")
        .endpoint_url(moto.url())
        .source_credentials(moto.user_credentials())
}

fn assumed_role_arn(role_arn: &str, session_name: &str) -> String {
    let role = role_arn.rsplit('/').next().expect("role name");
    format!("arn:aws:sts::123456789012:assumed-role/{role}/{session_name}")
}

#[tokio::test]
async fn assume_role_and_whoami() {
    let moto = Moto::start();
    let session = session(
        &moto,
        AssumeRole::new(&moto.external_role_arn)
            .role_session_name("async")
            .duration(Duration::from_secs(900))
            .external_id(&moto.external_id)
            .tag("team", "platform"),
    )
    .defer_refresh(false)
    .build()
    .await
    .expect("moto assumes the role at construction");
    let credentials = session.credentials().await.expect("cached");
    assert!(credentials.access_key_id().starts_with("ASIA"));
    let identity = session.whoami().await.expect("GetCallerIdentity");
    assert_eq!(
        identity.arn,
        assumed_role_arn(&moto.external_role_arn, "async")
    );
    assert_eq!(session.metrics().refreshes, 1);
}

#[tokio::test]
async fn mfa_from_an_async_provider() {
    let moto = Moto::start();
    let asked = Arc::new(AtomicUsize::new(0));
    let session = {
        let asked = asked.clone();
        session(
            &moto,
            AssumeRole::new(&moto.role_arn)
                .role_session_name("mfa")
                .serial_number(SERIAL),
        )
        .mfa_token_provider(move |serial| {
            let asked = asked.clone();
            async move {
                assert_eq!(serial, SERIAL);
                asked.fetch_add(1, Ordering::SeqCst);
                Ok("123456".to_owned())
            }
        })
        .build()
        .await
        .expect("valid")
    };
    assert_eq!(
        session.whoami().await.expect("whoami").arn,
        assumed_role_arn(&moto.role_arn, "mfa")
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn mfa_from_a_command_and_a_blocking_provider() {
    let moto = Moto::start();
    let role = AssumeRole::new(&moto.role_arn).serial_number(SERIAL);
    let command = session(&moto, role.clone().role_session_name("command"))
        .mfa_command(["sh", "-c", "echo 'aws:tester 112233'"])
        .build()
        .await
        .expect("valid");
    assert_eq!(
        command.whoami().await.expect("whoami").arn,
        assumed_role_arn(&moto.role_arn, "command")
    );
    let blocking = session(&moto, role.role_session_name("prompt"))
        .mfa_token_provider_blocking(|_| Ok("445566".to_owned()))
        .build()
        .await
        .expect("valid");
    assert_eq!(
        blocking.whoami().await.expect("whoami").arn,
        assumed_role_arn(&moto.role_arn, "prompt")
    );
}

#[tokio::test]
async fn a_custom_session_whoami_and_a_wrong_secret() {
    let moto = Moto::start();
    let keys = moto.user_credentials();
    let custom = RefreshableSession::custom(move || {
        let keys = keys.clone();
        async move {
            Ok(CustomCredentials::from(keys)
                .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
        }
    })
    .region("us-east-1")
    .endpoint_url(moto.url())
    .build()
    .await
    .expect("valid");
    assert_eq!(custom.whoami().await.expect("whoami").arn, moto.user_arn);

    let wrong = session(&moto, AssumeRole::new(&moto.role_arn))
        .source_credentials(Credentials::new(
            moto.access_key_id.clone(),
            "wrong",
            None,
            None,
        ))
        .build()
        .await
        .expect("valid");
    match wrong.credentials().await {
        Err(Error::Service(error)) => assert_eq!(error.code(), &ErrorCode::SignatureDoesNotMatch),
        other => panic!("{other:?}"),
    }
}
