//! IoT X.509 credentials with keys generated inside a SoftHSM2 token, in
//! both adapters: the key never leaves the token, the token signs the TLS
//! handshakes, the session loads the module and opens the token once and
//! keeps them across refreshes (they go on after the module's file is
//! deleted), MQTT connections to mosquitto present the same open key, and
//! a wrong PIN, a missing token, key or module, and a key that is not the
//! certificate's are typed errors.
//!
//! This binary has its own `main` (SoftHSM needs `SOFTHSM2_CONF` in the
//! environment from the process's start, see `softhsm::reexec`) and runs
//! its tests one after the other; a name on the command line filters them.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use refresh_session_core::Error;
use refresh_session_core::iot::{Iot, Pkcs11};
use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::mosquitto::Mosquitto;
use refresh_session_tests::mqtt_client::{round_trip, round_trip_async};
use refresh_session_tests::pki::Authority;
use refresh_session_tests::softhsm::{self, KeyKind, ModuleCopy, Token};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const ALIAS: &str = "device-role";
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Tokens, keys, certificates and the credential provider, made once.
struct Setup {
    ca: Authority,
    iot: LoopbackIot,
    broker: Mosquitto,
    token: Token,
    /// A token nobody logs in to before the wrong-PIN test.
    untouched: Token,
    /// (kind, key label, certificate) for each key in `token`.
    keys: Vec<(KeyKind, String, String)>,
}

impl Setup {
    fn new() -> Self {
        let ca = Authority::new("Test CA");
        let iot = LoopbackIot::start(
            ca.server_config(&ca.server(false)),
            IotOptions {
                role_alias: ALIAS.to_owned(),
                lifetime: Duration::from_secs(2),
            },
        );
        let broker = Mosquitto::start(&ca);
        let token = Token::create("device-token", "user-pin-1");
        let untouched = Token::create("untouched-token", "user-pin-2");
        untouched.generate("tls-key", KeyKind::P256);
        let keys = [
            (KeyKind::P256, "ec-p256"),
            (KeyKind::P384, "ec-p384"),
            (KeyKind::Rsa2048, "rsa-2048"),
        ]
        .into_iter()
        .map(|(kind, label)| {
            let public = token.generate(label, kind);
            (kind, label.to_owned(), ca.certify("sensor-17", &public))
        })
        .collect();
        Self {
            ca,
            iot,
            broker,
            token,
            untouched,
            keys,
        }
    }

    fn key(&self, label: &str, token: &Token) -> Pkcs11 {
        Pkcs11::new(softhsm::MODULE, &token.label, token.pin.as_str(), label)
    }

    fn params(&self, certificate: &str, key: Pkcs11) -> Iot {
        Iot::new(self.iot.endpoint(), ALIAS)
            .thing_name("sensor-17")
            .certificate_pem(certificate)
            .pkcs11(key)
            .ca_pem(&self.ca.certificate)
    }

    /// The key labelled `label`, through a copy of the module that is
    /// deleted once the session is built.
    fn key_in_copy(&self, module: &ModuleCopy, label: &str) -> Pkcs11 {
        Pkcs11::new(
            module.path(),
            &self.token.label,
            self.token.pin.as_str(),
            label,
        )
    }

    fn certificate(&self, kind: KeyKind) -> &str {
        &self
            .keys
            .iter()
            .find(|(k, ..)| *k == kind)
            .expect("a key of each kind")
            .2
    }
}

fn der(certificate: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(certificate.as_bytes())
        .expect("PEM")
        .to_vec()
}

fn config_field(result: Result<(), Error>) -> &'static str {
    match result {
        Err(Error::Config(error)) => error.field(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn blocking_build(params: Iot) -> Result<(), Error> {
    refresh_session_blocking::RefreshableSession::iot(params)
        .build()
        .map(drop)
}

fn tokio_build(params: Iot) -> Result<(), Error> {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        refresh_session_tokio::RefreshableSession::iot(params)
            .build()
            .await
            .map(drop)
    })
}

fn a_wrong_pin_is_a_typed_error(setup: &Setup) {
    let certificate = setup.ca.certify(
        "sensor-17",
        &setup.untouched.generate("other-key", KeyKind::P256),
    );
    let wrong = Pkcs11::new(
        softhsm::MODULE,
        &setup.untouched.label,
        "not-the-pin",
        "other-key",
    );
    assert_eq!(
        config_field(blocking_build(setup.params(&certificate, wrong.clone()))),
        "pkcs11.pin"
    );
    assert_eq!(
        config_field(tokio_build(setup.params(&certificate, wrong))),
        "pkcs11.pin"
    );
}

fn a_missing_token_key_or_module_is_a_typed_error(setup: &Setup) {
    let certificate = setup.certificate(KeyKind::P256);
    let cases = [
        (setup.key("no-such-key", &setup.token), "pkcs11.key_label"),
        (
            Pkcs11::new(softhsm::MODULE, "no-such-token", "1234", "ec-p256"),
            "pkcs11.token",
        ),
        (
            setup.key("ec-p256", &setup.token).in_slot(999_999),
            "pkcs11.token",
        ),
        (
            Pkcs11::new("/nonexistent/libpkcs11.so", "t", "1234", "k"),
            "pkcs11.module",
        ),
    ];
    for (key, field) in cases {
        let debug = format!("{key:?}");
        assert_eq!(
            config_field(blocking_build(setup.params(certificate, key.clone()))),
            field,
            "{debug}"
        );
        assert_eq!(
            config_field(tokio_build(setup.params(certificate, key))),
            field,
            "{debug}"
        );
    }
}

fn a_key_that_is_not_the_certificates_is_refused(setup: &Setup) {
    let p256_certificate = setup.certificate(KeyKind::P256);
    let p384_key = setup.key("ec-p384", &setup.token);
    assert_eq!(
        config_field(blocking_build(setup.params(p256_certificate, p384_key))),
        "pkcs11.key_label"
    );
}

fn a_pkcs11_uri_names_the_key(setup: &Setup) {
    let uri = format!(
        "pkcs11:token={};object=ec-p256?module-path={}&pin-value={}",
        setup.token.label,
        softhsm::MODULE,
        setup.token.pin
    );
    let key = Pkcs11::from_uri(&uri).expect("a valid URI");
    blocking_build(setup.params(setup.certificate(KeyKind::P256), key)).expect("the same key");
}

fn blocking_refreshes_with_each_kind_of_key(setup: &Setup) {
    use refresh_session_blocking::prelude::*;
    for (kind, label, certificate) in &setup.keys {
        let module = ModuleCopy::new();
        let key = setup.key_in_copy(&module, label);
        let session = RefreshableSession::iot(setup.params(certificate, key))
            .advisory_timeout(Duration::from_secs(1))
            .mandatory_timeout(Duration::from_millis(300))
            .build()
            .expect("the token opens");
        // The module was loaded and the token opened at build: refreshes
        // need neither the file nor a new login.
        module.delete();
        let calls = setup.iot.calls().len();
        let deadline = Instant::now() + TEST_LIMIT;
        while session.metrics().refreshes < 3 {
            assert!(Instant::now() < deadline, "{kind:?}: no refreshes");
            session.credentials().expect("credentials");
            std::thread::sleep(Duration::from_millis(20));
        }
        for call in &setup.iot.calls()[calls..] {
            assert_eq!(
                call.client_certificate,
                der(certificate),
                "{kind:?}: the HSM key's certificate"
            );
        }
    }
}

fn tokio_refreshes_with_each_kind_of_key(setup: &Setup) {
    use refresh_session_tokio::prelude::*;
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        for (kind, label, certificate) in &setup.keys {
            let module = ModuleCopy::new();
            let key = setup.key_in_copy(&module, label);
            let session = RefreshableSession::iot(setup.params(certificate, key))
                .advisory_timeout(Duration::from_secs(1))
                .mandatory_timeout(Duration::from_millis(300))
                .defer_refresh(false)
                .build()
                .await
                .expect("the token opens and signs");
            module.delete();
            let deadline = Instant::now() + TEST_LIMIT;
            while session.metrics().refreshes < 3 {
                assert!(Instant::now() < deadline, "{kind:?}: no refreshes");
                session.credentials().await.expect("credentials");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(session.metrics().waits, 0, "{kind:?}");
        }
    });
}

fn blocking_mqtt_presents_the_sessions_token_key(setup: &Setup) {
    use refresh_session_blocking::prelude::*;
    for (kind, label, certificate) in &setup.keys {
        let module = ModuleCopy::new();
        let session =
            RefreshableSession::iot(setup.params(certificate, setup.key_in_copy(&module, label)))
                .build()
                .expect("the token opens");
        // Loaded and opened at build: the connection needs neither again.
        module.delete();
        let (client, mut connection) = session
            .mqtt(Mqtt::new("127.0.0.1").port(setup.broker.tls_port))
            .expect("valid options");
        round_trip(
            &client,
            &mut connection,
            "hsm/blocking",
            label.as_bytes(),
            0,
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
    }
}

fn tokio_mqtt_presents_the_sessions_token_key(setup: &Setup) {
    use refresh_session_tokio::prelude::*;
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        for (kind, label, certificate) in &setup.keys {
            let module = ModuleCopy::new();
            let session = RefreshableSession::iot(
                setup.params(certificate, setup.key_in_copy(&module, label)),
            )
            .build()
            .await
            .expect("the token opens");
            module.delete();
            let (client, mut event_loop) = session
                .mqtt(Mqtt::new("127.0.0.1").port(setup.broker.tls_port))
                .await
                .expect("valid options");
            round_trip_async(&client, &mut event_loop, "hsm/tokio", label.as_bytes(), 0)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
        }
    });
}

type Test = fn(&Setup);

fn main() -> ExitCode {
    if let Some(code) = softhsm::reexec() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // The wrong-PIN test comes first: nothing has logged in to its token.
    let tests: [(&str, Test); 8] = [
        ("a_wrong_pin_is_a_typed_error", a_wrong_pin_is_a_typed_error),
        (
            "a_missing_token_key_or_module_is_a_typed_error",
            a_missing_token_key_or_module_is_a_typed_error,
        ),
        (
            "a_key_that_is_not_the_certificates_is_refused",
            a_key_that_is_not_the_certificates_is_refused,
        ),
        ("a_pkcs11_uri_names_the_key", a_pkcs11_uri_names_the_key),
        (
            "blocking_refreshes_with_each_kind_of_key",
            blocking_refreshes_with_each_kind_of_key,
        ),
        (
            "tokio_refreshes_with_each_kind_of_key",
            tokio_refreshes_with_each_kind_of_key,
        ),
        (
            "blocking_mqtt_presents_the_sessions_token_key",
            blocking_mqtt_presents_the_sessions_token_key,
        ),
        (
            "tokio_mqtt_presents_the_sessions_token_key",
            tokio_mqtt_presents_the_sessions_token_key,
        ),
    ];
    let filter: Option<String> = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let setup = Setup::new();
    let mut failed = 0;
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&setup)));
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        failed += usize::from(outcome.is_err());
    }
    println!(
        "\ntest result: {}. {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
