use std::collections::HashMap;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::iot::DeviceKey;

const DATA: &str = "a1example-ats.iot.eu-west-1.amazonaws.com";

fn device() -> DeviceIdentity {
    DeviceIdentity::new(
        Some(Pem::Inline(Secret::new("certificate"))),
        Some(Pem::Inline(Secret::new("key"))),
        None,
        Some(Pem::Inline(Secret::new("session ca"))),
    )
    .expect("a certificate and a key")
}

fn plan(options: Mqtt, device: Option<&DeviceIdentity>) -> Result<MqttPlan, ConfigError> {
    options.resolve(SessionIdentity {
        thing_name: Some("sensor-17"),
        device,
        region: Some("us-east-2"),
    })
}

fn field(options: Mqtt) -> &'static str {
    plan(options, Some(&device())).expect_err("invalid").field()
}

fn query(url: &str) -> HashMap<String, String> {
    let (_, query) = url.split_once('?').expect("a query string");
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn tls_defaults_come_from_the_session() {
    let plan = plan(Mqtt::new(DATA), Some(&device())).expect("valid");
    assert_eq!(plan.host, DATA);
    assert_eq!(plan.port, 8883);
    assert_eq!(plan.client_id, "sensor-17");
    assert_eq!(plan.keep_alive, Duration::from_secs(60));
    assert!(plan.clean_session);
    assert_eq!(plan.ca, device().ca, "the session's trust anchors");
    assert_eq!(
        plan.transport,
        PlannedTransport::Tls {
            identity: MqttIdentity::Session,
            alpn: None
        }
    );
}

#[test]
fn port_443_offers_the_mqtt_alpn() {
    let plan = plan(Mqtt::new(DATA).port(443), Some(&device())).expect("valid");
    assert_eq!(
        plan.transport,
        PlannedTransport::Tls {
            identity: MqttIdentity::Session,
            alpn: Some("x-amzn-mqtt-ca")
        }
    );
}

#[test]
fn an_own_identity_replaces_the_sessions() {
    let plan = plan(
        Mqtt::new(DATA)
            .client_id("other")
            .certificate_pem("other certificate")
            .private_key_pem("other key")
            .ca_pem("other ca"),
        Some(&device()),
    )
    .expect("valid");
    assert_eq!(plan.client_id, "other");
    assert_eq!(plan.ca, Some(Pem::Inline(Secret::new("other ca"))));
    let PlannedTransport::Tls {
        identity: MqttIdentity::Own(identity),
        ..
    } = plan.transport
    else {
        panic!("an own identity: {:?}", plan.transport);
    };
    assert_eq!(
        identity.key,
        DeviceKey::Pem(Pem::Inline(Secret::new("other key")))
    );
}

#[test]
fn websocket_regions_come_from_the_options_the_endpoint_or_the_session() {
    let region = |options: Mqtt| match plan(options.websocket(), None).expect("valid") {
        MqttPlan {
            transport: PlannedTransport::WebSocket { region },
            ..
        } => region,
        other => panic!("{other:?}"),
    };
    let default = plan(Mqtt::new(DATA).websocket(), None).expect("valid");
    assert_eq!(default.port, 443);
    assert_eq!(region(Mqtt::new(DATA)), "eu-west-1");
    assert_eq!(region(Mqtt::new("127.0.0.1").port(9443)), "us-east-2");
    assert_eq!(region(Mqtt::new(DATA).region("ap-south-1")), "ap-south-1");
}

#[test]
fn every_invalid_option_names_its_field() {
    let cases = [
        (Mqtt::new("wss://host/mqtt"), "endpoint"),
        (Mqtt::new("host:8883"), "endpoint"),
        (Mqtt::new(""), "endpoint"),
        (Mqtt::new(DATA).port(0), "port"),
        (Mqtt::new(DATA).port(1883), "port"),
        (Mqtt::new(DATA).websocket().port(8883), "port"),
        (
            Mqtt::new(DATA).keep_alive(Duration::from_secs(10)),
            "keep_alive",
        ),
        (
            Mqtt::new("127.0.0.1").keep_alive(Duration::ZERO),
            "keep_alive",
        ),
        (
            Mqtt::new("127.0.0.1").keep_alive(Duration::from_millis(1500)),
            "keep_alive",
        ),
        (
            Mqtt::new("127.0.0.1").keep_alive(Duration::from_secs(70_000)),
            "keep_alive",
        ),
        (Mqtt::new(DATA).client_id(""), "client_id"),
        (Mqtt::new(DATA).client_id("a/#"), "client_id"),
        (
            Mqtt::new(DATA).certificate_pem("certificate"),
            "private_key",
        ),
        (Mqtt::new(DATA).private_key_pem("key"), "certificate"),
        (
            Mqtt::new(DATA)
                .certificate_pem("certificate")
                .private_key_pem("key")
                .pkcs11(Pkcs11::new("/lib/p11.so", "token", "1234", "key")),
            "pkcs11",
        ),
        (
            Mqtt::new(DATA)
                .websocket()
                .certificate_pem("certificate")
                .private_key_pem("key"),
            "certificate",
        ),
    ];
    for (options, expected) in cases {
        let debug = format!("{options:?}");
        assert_eq!(field(options), expected, "{debug}");
    }
}

#[test]
fn a_session_without_a_device_needs_one_for_tls_but_not_for_websockets() {
    let error = plan(Mqtt::new(DATA), None).expect_err("no device");
    assert_eq!(error.field(), "certificate");
    assert!(error.to_string().contains("websocket()"), "{error}");
    plan(Mqtt::new(DATA).websocket(), None).expect("signed with credentials");
}

#[test]
fn a_client_id_is_required_without_a_thing_name() {
    let error = Mqtt::new(DATA)
        .resolve(SessionIdentity {
            device: Some(&device()),
            ..SessionIdentity::default()
        })
        .expect_err("no client id");
    assert_eq!(error.field(), "client_id");
}

#[test]
fn websocket_urls_are_presigned_with_the_token_after_the_signature() {
    let plan = plan(Mqtt::new(DATA).websocket(), None).expect("valid");
    assert_eq!(plan.websocket_base(), format!("wss://{DATA}/mqtt"));
    let now = datetime!(2026-11-22 13:24:34 UTC);
    let credentials = |secret: &str, token: &str| {
        Credentials::new("ASIAEXAMPLE", secret, Some(Secret::new(token)), None)
    };
    let url = plan
        .websocket_url(&credentials("secret", "to/ken+=="), now)
        .expect("signed");
    assert!(url.starts_with(&format!("wss://{DATA}/mqtt?")), "{url}");
    assert!(
        url.ends_with("&X-Amz-Security-Token=to%2Fken%2B%3D%3D"),
        "the token comes last, encoded: {url}"
    );
    let params = query(&url);
    assert_eq!(params["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(
        params["X-Amz-Credential"],
        "ASIAEXAMPLE%2F20261122%2Feu-west-1%2Fiotdevicegateway%2Faws4_request"
    );
    assert_eq!(params["X-Amz-Date"], "20261122T132434Z");
    assert_eq!(params["X-Amz-Expires"], "86400");
    assert_eq!(params["X-Amz-SignedHeaders"], "host");

    let signature = |url: &str| query(url)["X-Amz-Signature"].clone();
    let other_token = plan
        .websocket_url(&credentials("secret", "another token"), now)
        .expect("signed");
    assert_eq!(
        signature(&url),
        signature(&other_token),
        "the token is not signed"
    );
    let other_secret = plan
        .websocket_url(&credentials("another secret", "to/ken+=="), now)
        .expect("signed");
    assert_ne!(signature(&url), signature(&other_secret));
}

#[test]
fn a_non_default_port_is_part_of_the_signed_host() {
    let plan = plan(Mqtt::new("127.0.0.1").websocket().port(9443), None).expect("valid");
    assert_eq!(plan.websocket_base(), "wss://127.0.0.1:9443/mqtt");
    let credentials = Credentials::new("AKID", "secret", None, None);
    let url = plan
        .websocket_url(&credentials, datetime!(2026-11-22 0:00 UTC))
        .expect("signed");
    assert!(url.starts_with("wss://127.0.0.1:9443/mqtt?"), "{url}");
    assert!(!url.contains("X-Amz-Security-Token"), "no token: {url}");
}

#[test]
fn only_websocket_plans_have_urls() {
    let plan = plan(Mqtt::new(DATA), Some(&device())).expect("valid");
    let credentials = Credentials::new("AKID", "secret", None, None);
    let error = plan
        .websocket_url(&credentials, datetime!(2026-11-22 0:00 UTC))
        .expect_err("a TLS plan");
    assert!(matches!(error, Error::Signing(_)), "{error}");
}
