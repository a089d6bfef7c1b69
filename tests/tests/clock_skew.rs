//! A session whose clock is twenty minutes off, either way, still gets
//! valid credentials: from the loopback STS, which refuses requests signed
//! more than 15 minutes from its time (as AWS does), and from moto, which
//! does not check but sends its time and issues 15-minute credentials that
//! a clock twenty minutes fast would think expired.

use std::time::{Duration, SystemTime};

use refresh_session_core::Clock;
use refresh_session_tests::moto::Moto;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use time::OffsetDateTime;

const TWENTY_MINUTES: Duration = Duration::from_secs(1200);

/// The system clock, twenty minutes fast or slow.
#[derive(Clone, Copy)]
struct Skewed {
    fast: bool,
}

impl Clock for Skewed {
    fn now(&self) -> SystemTime {
        if self.fast {
            SystemTime::now() + TWENTY_MINUTES
        } else {
            SystemTime::now() - TWENTY_MINUTES
        }
    }
}

const SKEWS: [Skewed; 2] = [Skewed { fast: true }, Skewed { fast: false }];

fn loopback() -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay: Duration::ZERO,
    })
}

fn assert_valid_now(credentials: &refresh_session_core::Credentials) {
    let expiration = credentials.expiration().expect("temporary");
    assert!(
        expiration > OffsetDateTime::now_utc(),
        "expired at {expiration}"
    );
}

mod blocking {
    use refresh_session_blocking::RefreshableSession;
    use refresh_session_blocking::prelude::*;

    use super::*;

    fn session(endpoint: &str, role: &str, keys: Credentials, clock: Skewed) -> RefreshableSession {
        RefreshableSession::sts(
            AssumeRole::new(role)
                .role_session_name("skewed")
                .duration(Duration::from_secs(900)),
        )
        .region("us-east-1")
        .endpoint_url(endpoint)
        .source_credentials(keys)
        .clock(clock)
        .build()
        .expect("valid")
    }

    #[test]
    fn the_loopback_sts_refuses_the_wrong_time_and_the_retry_succeeds() {
        for clock in SKEWS {
            let sts = loopback();
            let keys = Credentials::new("AKIDSKEW", "secret", None, None);
            let session = session(
                &sts.url(),
                "arn:aws:iam::123456789012:role/skewed",
                keys,
                clock,
            );
            let credentials = session
                .credentials()
                .expect("credentials despite the clock");
            assert_valid_now(&credentials);
            assert_eq!(sts.requests().len(), 2, "refused once, then corrected");
            // whoami is signed on AWS's time too, or the STS would refuse it.
            assert!(session.whoami().expect("whoami").arn.ends_with("/skewed"));
        }
    }

    #[test]
    fn moto_credentials_are_judged_on_aws_time() {
        let moto = Moto::start();
        for clock in SKEWS {
            let session = session(moto.url(), &moto.role_arn, moto.user_credentials(), clock);
            let credentials = session
                .credentials()
                .expect("credentials despite the clock");
            assert_valid_now(&credentials);
            assert!(session.whoami().expect("whoami").arn.ends_with("/skewed"));
        }
    }
}

mod tokio_adapter {
    use refresh_session_tokio::RefreshableSession;
    use refresh_session_tokio::prelude::*;

    use super::*;

    async fn session(
        endpoint: &str,
        role: &str,
        keys: Credentials,
        clock: Skewed,
    ) -> RefreshableSession {
        RefreshableSession::sts(
            AssumeRole::new(role)
                .role_session_name("skewed")
                .duration(Duration::from_secs(900)),
        )
        .region("us-east-1")
        .endpoint_url(endpoint)
        .source_credentials(keys)
        .clock(clock)
        .defer_refresh(false)
        .build()
        .await
        .expect("the first fetch succeeds despite the clock")
    }

    #[tokio::test]
    async fn the_loopback_sts_refuses_the_wrong_time_and_the_retry_succeeds() {
        for clock in SKEWS {
            let sts = loopback();
            let keys = Credentials::new("AKIDSKEW", "secret", None, None);
            let session = session(
                &sts.url(),
                "arn:aws:iam::123456789012:role/skewed",
                keys,
                clock,
            )
            .await;
            assert_valid_now(&session.credentials().await.expect("cached"));
            assert_eq!(sts.requests().len(), 2, "refused once, then corrected");
            assert!(
                session
                    .whoami()
                    .await
                    .expect("whoami")
                    .arn
                    .ends_with("/skewed")
            );
            assert_eq!(session.metrics().waits, 0);
        }
    }

    #[tokio::test]
    async fn moto_credentials_are_judged_on_aws_time() {
        let moto = Moto::start();
        for clock in SKEWS {
            let session = session(moto.url(), &moto.role_arn, moto.user_credentials(), clock).await;
            assert_valid_now(&session.credentials().await.expect("cached"));
            assert!(
                session
                    .whoami()
                    .await
                    .expect("whoami")
                    .arn
                    .ends_with("/skewed")
            );
        }
    }
}
