//! IoT X.509 credentials with PEM keys, in both adapters, against the
//! loopback credential provider (mutual TLS, client certificates from the
//! test CA, credentials that live seconds).

use std::time::{Duration, Instant};

use refresh_session_core::Error;
use refresh_session_core::error::{ErrorCode, TransportErrorKind};
use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::pki::{Authority, Identity};
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const ALIAS: &str = "device-role";
const LIFETIME: Duration = Duration::from_secs(3);
const TEST_LIMIT: Duration = Duration::from_secs(30);

fn provider(ca: &Authority, expired: bool) -> LoopbackIot {
    LoopbackIot::start(
        ca.server_config(&ca.server(expired)),
        IotOptions {
            role_alias: ALIAS.to_owned(),
            lifetime: LIFETIME,
        },
    )
}

fn der(certificate: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(certificate.as_bytes())
        .expect("PEM")
        .to_vec()
}

/// Files holding a device identity and the CA, as a device keeps them.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(device: &Identity, ca: &Authority) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("cert.pem"), &device.certificate).expect("written");
        std::fs::write(dir.path().join("key.pem"), &device.key).expect("written");
        std::fs::write(dir.path().join("ca.pem"), &ca.certificate).expect("written");
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

fn assert_tls_error(
    result: Result<std::sync::Arc<refresh_session_core::Credentials>, Error>,
    mentions: &str,
) {
    match result {
        Err(Error::Transport(error)) => {
            assert_eq!(error.kind(), TransportErrorKind::Tls, "{error}");
            assert!(
                error.to_string().to_lowercase().contains(mentions),
                "{error}"
            );
        }
        other => panic!("expected a TLS error mentioning {mentions}, got {other:?}"),
    }
}

mod blocking {
    use refresh_session_blocking::prelude::*;
    use refresh_session_blocking::{Builder, RefreshableSession};

    use super::*;

    fn session(endpoint: String, device: &Identity, ca: &Authority) -> Builder {
        RefreshableSession::iot(
            Iot::new(endpoint, ALIAS)
                .thing_name("sensor-17")
                .certificate_pem(&device.certificate)
                .private_key_pem(device.key.as_str())
                .ca_pem(&ca.certificate),
        )
        .advisory_timeout(Duration::from_secs(1))
        .mandatory_timeout(Duration::from_millis(500))
    }

    #[test]
    fn credentials_are_fetched_and_refreshed_with_a_pem_key_from_files() {
        let ca = Authority::new("Test CA");
        let device = ca.device("sensor-17");
        let files = Files::new(&device, &ca);
        let iot = provider(&ca, false);
        let session = RefreshableSession::iot(
            Iot::new(iot.endpoint(), ALIAS)
                .thing_name("sensor-17")
                .duration(Duration::from_secs(900))
                .certificate_file(files.path("cert.pem"))
                .private_key_file(files.path("key.pem"))
                .ca_file(files.path("ca.pem")),
        )
        .advisory_timeout(Duration::from_secs(1))
        .mandatory_timeout(Duration::from_millis(500))
        .build()
        .expect("valid");
        let deadline = Instant::now() + TEST_LIMIT;
        let mut seen = std::collections::HashSet::new();
        while session.metrics().refreshes < 3 {
            assert!(
                Instant::now() < deadline,
                "no refreshes within {TEST_LIMIT:?}"
            );
            let credentials = session.credentials().expect("credentials");
            assert!(credentials.access_key_id().starts_with("ASIAIOT"));
            seen.insert(credentials.access_key_id().to_owned());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            seen.len() >= 2,
            "the refreshed credentials were served: {seen:?}"
        );
        for call in iot.calls() {
            assert_eq!(call.path, format!("/role-aliases/{ALIAS}/credentials"));
            assert_eq!(call.thing_name.as_deref(), Some("sensor-17"));
            assert_eq!(call.duration_seconds.as_deref(), Some("900"));
            assert_eq!(
                call.client_certificate,
                der(&device.certificate),
                "the device's certificate"
            );
        }
    }

    #[test]
    fn a_device_from_another_ca_is_refused() {
        let ca = Authority::new("Test CA");
        let foreign = Authority::new("Foreign CA").device("intruder");
        let iot = provider(&ca, false);
        let session = session(iot.endpoint(), &foreign, &ca)
            .max_attempts(1)
            .build()
            .expect("valid");
        assert_tls_error(session.credentials(), "unknownca");
        assert!(iot.calls().is_empty(), "no request got through");
    }

    #[test]
    fn an_expired_server_certificate_is_refused() {
        let ca = Authority::new("Test CA");
        let device = ca.device("sensor-17");
        let iot = provider(&ca, true);
        let session = session(iot.endpoint(), &device, &ca)
            .build()
            .expect("valid");
        assert_tls_error(session.credentials(), "expired");
        assert_eq!(
            session.metrics().upstream_calls,
            1,
            "a TLS failure is not retried"
        );
    }

    #[test]
    fn an_unknown_role_alias_is_a_typed_error() {
        let ca = Authority::new("Test CA");
        let device = ca.device("sensor-17");
        let iot = provider(&ca, false);
        let session = RefreshableSession::iot(
            Iot::new(iot.endpoint(), "no-such-alias")
                .certificate_pem(&device.certificate)
                .private_key_pem(device.key.as_str())
                .ca_pem(&ca.certificate),
        )
        .build()
        .expect("valid");
        match session.credentials() {
            Err(Error::Service(e)) => {
                assert_eq!(e.code(), &ErrorCode::Other("ResourceNotFound".into()));
                assert_eq!(e.message(), "Role alias does not exist");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn whoami_signs_with_the_iot_credentials() {
        let ca = Authority::new("Test CA");
        let device = ca.device("sensor-17");
        let iot = provider(&ca, false);
        let sts = LoopbackSts::start(StsOptions {
            lifetime: Duration::from_secs(3600),
            delay: Duration::ZERO,
        });
        let session = session(iot.endpoint(), &device, &ca)
            .region("us-east-1")
            .endpoint_url(sts.url())
            .build()
            .expect("valid");
        let credentials = session.credentials().expect("credentials");
        let identity = session.whoami().expect("whoami");
        assert_eq!(
            identity.arn,
            format!(
                "arn:aws:iam::123456789012:user/{}",
                credentials.access_key_id()
            )
        );
    }

    #[test]
    fn identity_problems_are_configuration_errors_naming_the_field() {
        let ca = Authority::new("Test CA");
        let (one, other) = (ca.device("one"), ca.device("other"));
        let field = |builder: Builder| match builder.build() {
            Err(Error::Config(error)) => error.field(),
            other => panic!("expected a configuration error, got {other:?}"),
        };
        let iot = || Iot::new("127.0.0.1:1", ALIAS);
        assert_eq!(
            field(RefreshableSession::iot(
                iot()
                    .certificate_pem(&one.certificate)
                    .private_key_pem(other.key.as_str())
            )),
            "private_key",
            "a key that is not the certificate's"
        );
        assert_eq!(
            field(RefreshableSession::iot(
                iot()
                    .certificate_file("/nonexistent/cert.pem")
                    .private_key_pem(one.key.as_str())
            )),
            "certificate"
        );
        assert_eq!(
            field(RefreshableSession::iot(
                iot()
                    .certificate_pem("not PEM")
                    .private_key_pem(one.key.as_str())
            )),
            "certificate"
        );
        assert_eq!(
            field(RefreshableSession::iot(
                iot()
                    .certificate_pem(&one.certificate)
                    .private_key_pem("garbage")
            )),
            "private_key"
        );
        assert_eq!(
            field(RefreshableSession::iot(
                iot()
                    .certificate_pem(&one.certificate)
                    .private_key_pem(one.key.as_str())
                    .ca_pem("none")
            )),
            "ca"
        );
    }
}

mod async_adapter {
    use refresh_session_tokio::prelude::*;
    use refresh_session_tokio::{Builder, RefreshableSession};

    use super::*;

    fn session(endpoint: String, device: &Identity, ca: &Authority) -> Builder {
        RefreshableSession::iot(
            Iot::new(endpoint, ALIAS)
                .thing_name("sensor-17")
                .certificate_pem(&device.certificate)
                .private_key_pem(device.key.as_str())
                .ca_pem(&ca.certificate),
        )
        .advisory_timeout(Duration::from_secs(1))
        .mandatory_timeout(Duration::from_millis(500))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credentials_are_fetched_and_refreshed_in_the_background() {
        let ca = Authority::new("Test CA");
        let device = ca.device("sensor-17");
        let iot = provider(&ca, false);
        let session = session(iot.endpoint(), &device, &ca)
            .defer_refresh(false)
            .build()
            .await
            .expect("the first fetch succeeds");
        let deadline = Instant::now() + TEST_LIMIT;
        while session.metrics().refreshes < 3 {
            assert!(
                Instant::now() < deadline,
                "no refreshes within {TEST_LIMIT:?}"
            );
            let credentials = session.credentials().await.expect("credentials");
            assert!(credentials.access_key_id().starts_with("ASIAIOT"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(session.metrics().waits, 0);
        for call in iot.calls() {
            assert_eq!(call.thing_name.as_deref(), Some("sensor-17"));
            assert_eq!(call.client_certificate, der(&device.certificate));
        }
    }

    #[tokio::test]
    async fn a_device_from_another_ca_and_an_expired_server_are_refused() {
        let ca = Authority::new("Test CA");
        let foreign = Authority::new("Foreign CA").device("intruder");
        let iot = provider(&ca, false);
        let refused = session(iot.endpoint(), &foreign, &ca)
            .max_attempts(1)
            .build()
            .await
            .expect("valid");
        assert_tls_error(refused.credentials().await, "unknownca");
        let device = ca.device("sensor-17");
        let expired = provider(&ca, true);
        let distrusted = session(expired.endpoint(), &device, &ca)
            .build()
            .await
            .expect("valid");
        assert_tls_error(distrusted.credentials().await, "expired");
    }
}
