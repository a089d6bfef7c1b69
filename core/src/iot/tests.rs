use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::error::{ErrorCode, ServiceError};
use crate::harness;

const ENDPOINT: &str = "c2example.credentials.iot.eu-west-1.amazonaws.com";

fn device() -> Iot {
    Iot::new(ENDPOINT, "device-role")
        .certificate_pem("-----BEGIN CERTIFICATE-----")
        .private_key_pem("-----BEGIN PRIVATE KEY-----")
}

fn field(params: Iot) -> &'static str {
    params.validated().expect_err("invalid").field()
}

fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).expect("valid status");
    response
}

#[test]
fn the_request_names_the_alias_and_the_thing() {
    let (request, identity) = device()
        .thing_name("sensor-17")
        .duration(Duration::from_secs(3600))
        .validated()
        .expect("valid");
    let http = request.request().expect("request");
    assert_eq!(http.method(), http::Method::GET);
    assert_eq!(
        http.uri(),
        "https://c2example.credentials.iot.eu-west-1.amazonaws.com/role-aliases/device-role/credentials"
    );
    assert_eq!(http.headers()["x-amzn-iot-thingname"], "sensor-17");
    assert_eq!(
        http.headers()["x-amzn-iot-credential-duration-seconds"],
        "3600"
    );
    assert!(http.body().is_empty());
    assert_eq!(request.endpoint.region(), Some("eu-west-1"));
    assert!(matches!(identity.key, DeviceKey::Pem(_)));
}

#[test]
fn endpoints_are_used_rewritten_or_refused() {
    let authority = |endpoint: &str| Endpoint::parse(endpoint).map(|e| (e.authority, e.region));
    assert_eq!(
        authority(&format!("https://{ENDPOINT}/")).expect("url form"),
        (ENDPOINT.to_owned(), Some("eu-west-1".to_owned()))
    );
    assert_eq!(
        authority("a1b2c3-ats.iot.us-east-1.amazonaws.com").expect("rewritten"),
        (
            "a1b2c3.credentials.iot.us-east-1.amazonaws.com".to_owned(),
            Some("us-east-1".to_owned())
        )
    );
    assert_eq!(
        authority("127.0.0.1:8443").expect("loopback, for tests"),
        ("127.0.0.1:8443".to_owned(), None)
    );
    for bad in [
        "iot.us-east-1.amazonaws.com",
        "example.com",
        "http://c2example.credentials.iot.eu-west-1.amazonaws.com",
        "https://host/path",
        "",
    ] {
        assert_eq!(
            Endpoint::parse(bad).expect_err(bad).field(),
            "endpoint",
            "{bad}"
        );
    }
}

#[test]
fn every_invalid_value_names_its_field() {
    assert_eq!(
        field(
            Iot::new("example.com", "r")
                .certificate_pem("c")
                .private_key_pem("k")
        ),
        "endpoint"
    );
    assert_eq!(field(device().thing_name("has space")), "thing_name");
    assert_eq!(
        field(device().duration(Duration::from_secs(60))),
        "duration"
    );
    assert_eq!(
        field(
            Iot::new(ENDPOINT, "role alias")
                .certificate_pem("c")
                .private_key_pem("k")
        ),
        "role_alias"
    );
    assert_eq!(
        field(Iot::new(ENDPOINT, "r").private_key_pem("k")),
        "certificate"
    );
    assert_eq!(
        field(Iot::new(ENDPOINT, "r").certificate_pem("c")),
        "private_key"
    );
    let pkcs11 = Pkcs11::new("/usr/lib/softhsm/libsofthsm2.so", "token", "1234", "key");
    assert_eq!(field(device().pkcs11(pkcs11)), "pkcs11");
}

#[test]
fn pkcs11_uris_are_read_as_rfc_7512_says() {
    let key = Pkcs11::from_uri(
        "pkcs11:token=device%20token;object=tls-key;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
    )
    .expect("valid");
    assert_eq!(key.token, Token::Label("device token".into()));
    assert_eq!(key.key_label, "tls-key");
    assert_eq!(key.pin.expose(), "1234");
    assert_eq!(key.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    let by_slot =
        Pkcs11::from_uri("pkcs11:slot-id=7;object=k?module-path=/m.so&pin-value=1").expect("valid");
    assert_eq!(by_slot.token, Token::Slot(7));
    for bad in [
        "not-a-uri",
        "pkcs11:object=k?pin-value=1",
        "pkcs11:token=t?module-path=/m.so&pin-value=1",
        "pkcs11:token=t;object=k?module-path=/m.so",
        "pkcs11:token=t;object=k;junk?module-path=/m.so&pin-value=1",
        "pkcs11:slot-id=x;object=k?module-path=/m.so&pin-value=1",
        "pkcs11:token=%zz;object=k?module-path=/m.so&pin-value=1",
    ] {
        assert_eq!(
            Pkcs11::from_uri(bad).expect_err(bad).field(),
            "pkcs11",
            "{bad}"
        );
    }
    assert!(!format!("{key:?}").contains("1234"), "the PIN is redacted");
    // A bad PIN is never quoted back.
    let error = Pkcs11::from_uri("pkcs11:token=t;object=k?module-path=/m.so&pin-value=12%3")
        .expect_err("bad escape");
    assert!(error.to_string().contains("pin-value"), "{error}");
    assert!(!error.to_string().contains("12%3"), "{error}");
    let error = Pkcs11::from_uri("pkcs11:token=t;object=k?module-path=/m.so&pin:1234")
        .expect_err("not name=value");
    assert!(!error.to_string().contains("1234"), "{error}");
}

#[test]
fn a_uri_and_a_pin_apart() {
    assert!(Pkcs11::uri_holds_pin(
        "pkcs11:token=t;object=k?pin-value=1&module-path=/m.so"
    ));
    assert!(!Pkcs11::uri_holds_pin(
        "pkcs11:token=pin-value;object=k?module-path=/m.so"
    ));
    let key = Pkcs11::from_uri_and_pin(
        "pkcs11:token=t;object=k?module-path=/m.so",
        Secret::new("5678".to_owned()),
    )
    .expect("valid");
    assert_eq!(key.pin.expose(), "5678");
    assert_eq!(key.key_label, "k");
    let error = Pkcs11::from_uri_and_pin(
        "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234",
        Secret::new("5678".to_owned()),
    )
    .expect_err("a PIN in the URI");
    assert!(error.to_string().contains("pin-value"), "{error}");
    assert!(!error.to_string().contains("1234"), "{error}");
}

#[test]
fn parses_the_credentials_answer() {
    let issued = Credentials::new(
        "ASIAIOT",
        "secret",
        Some(Secret::new("token")),
        Some(datetime!(2030-01-01 0:00 UTC)),
    );
    let parsed = parse_credentials(&harness::iot_credentials_response(&issued)).expect("valid");
    assert_eq!(parsed, issued);
}

#[test]
fn error_answers_and_bad_bodies_are_typed_errors() {
    let service = |status, body: &str| match parse_credentials(&response(status, body)) {
        Err(Error::Service(e)) => (e.code().clone(), e.message().to_owned()),
        other => panic!("{status} {body}: {other:?}"),
    };
    assert_eq!(
        service(403, r#"{"message":"Access Denied"}"#),
        (ErrorCode::AccessDenied, "Access Denied".into())
    );
    assert_eq!(
        service(404, r#"{"message":"Role alias does not exist"}"#).0,
        ErrorCode::Other("ResourceNotFound".into())
    );
    assert_eq!(service(429, "").0, ErrorCode::Throttling);
    assert_eq!(service(503, "<html>").0, ErrorCode::ServiceUnavailable);
    for body in [
        "",
        "not json",
        r#"{"credentials":{}}"#,
        r#"{"credentials":{"accessKeyId":"","secretAccessKey":"s","sessionToken":"t","expiration":"2030-01-01T00:00:00Z"}}"#,
        r#"{"credentials":{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t","expiration":"soon"}}"#,
        r#"{"credentials":{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t","expiration":"2030-01-01T00:00:00"}}"#,
    ] {
        assert!(
            matches!(
                parse_credentials(&response(200, body)),
                Err(Error::InvalidResponse { status: 200, .. })
            ),
            "{body}"
        );
    }
    assert!(
        Error::from(ServiceError::new(
            SERVICE,
            503,
            ErrorCode::ServiceUnavailable,
            "",
            None
        ))
        .is_retryable()
    );
}
