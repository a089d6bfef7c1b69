//! rumqttc options for a session's [`MqttPlan`]: mutual TLS presenting the
//! device's key (the session's own, shared, or one the options set), or a
//! WebSocket whose URL is presigned anew on every connect, so a client
//! reconnects with the session's current credentials long after the ones
//! it started with have expired.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use refresh_session_core::mqtt::{MqttIdentity, MqttPlan, PlannedTransport};
use refresh_session_core::{ConfigError, Error};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use crate::tls::{self, DeviceTls};

/// How many requests (publish, subscribe, ...) a client queues before it
/// waits for the connection to take them.
pub const REQUEST_CAPACITY: usize = 64;

/// The largest packet sent or accepted: AWS IoT Core's 128 KiB message
/// limit, plus room for the topic and the headers (rumqttc's default is
/// 10 KiB).
const MAX_PACKET_SIZE: usize = 130 * 1024;

/// A future of a presigned WebSocket URL.
pub type PresignFuture = Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>;

/// Makes a presigned WebSocket URL from the session's current credentials;
/// called on every connect.
pub type Presign = Arc<dyn Fn() -> PresignFuture + Send + Sync>;

/// The rumqttc options for `plan`. `device` is the session's TLS identity,
/// presented when the plan says [`MqttIdentity::Session`]; `presign` is
/// kept only by WebSocket plans. Reads files and may open a PKCS#11 token
/// when the plan has its own identity.
pub fn options(
    plan: &MqttPlan,
    device: Option<&DeviceTls>,
    presign: Presign,
) -> Result<MqttOptions, ConfigError> {
    let roots = tls::roots(plan.ca.as_ref())?;
    let mut options = match &plan.transport {
        PlannedTransport::Tls { identity, alpn } => {
            let key = match identity {
                MqttIdentity::Session => device.map(|d| d.key().clone()).ok_or_else(|| {
                    ConfigError::new("certificate", "the session has no device identity")
                })?,
                MqttIdentity::Own(identity) => tls::certified_key(identity)?,
            };
            let config = tls::client_config(roots, Some(key), *alpn);
            let mut options = MqttOptions::new(&plan.client_id, &plan.host, plan.port);
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
            options
        }
        PlannedTransport::WebSocket { .. } => {
            let config = tls::client_config(roots, None, None);
            let mut options = MqttOptions::new(&plan.client_id, plan.websocket_base(), plan.port);
            options.set_transport(Transport::wss_with_config(TlsConfiguration::Rustls(config)));
            options.set_request_modifier(move |request| presigned(request, presign.clone()));
            options
        }
    };
    options
        .set_keep_alive(plan.keep_alive)
        .set_clean_session(plan.clean_session)
        .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    Ok(options)
}

/// The WebSocket upgrade request with its URL presigned. rumqttc cannot be
/// told that signing failed, so the request then goes out unsigned, the
/// broker refuses it, and the warning says why.
async fn presigned(mut request: http::Request<()>, presign: Presign) -> http::Request<()> {
    let uri = presign().await.and_then(|url| {
        url.parse::<http::Uri>()
            .map_err(|e| Error::Signing(format!("the presigned URL does not parse: {e}")))
    });
    match uri {
        Ok(uri) => *request.uri_mut() = uri,
        Err(error) => tracing::warn!(
            target: "refresh_session",
            %error,
            "could not presign the MQTT WebSocket URL; the broker will refuse the connection"
        ),
    }
    request
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};

    use refresh_session_core::engine::Engine;
    use refresh_session_core::iot::Iot;
    use refresh_session_core::mqtt::Mqtt;
    use refresh_session_core::resolved::ResolvedSession;
    use refresh_session_core::{SessionConfig, SessionOptions};
    use rustls::SignatureScheme;
    use time::macros::datetime;

    use super::*;

    fn session(config: SessionConfig) -> ResolvedSession {
        let no_env = |_: &str| None;
        let (_, session) =
            Engine::new(config, &no_env, datetime!(2026-11-22 0:00 UTC), 7).expect("valid");
        session
    }

    fn iot_session() -> (ResolvedSession, DeviceTls) {
        let key = rcgen::KeyPair::generate().expect("a key");
        let certificate = rcgen::CertificateParams::new(vec!["sensor-17".to_owned()])
            .expect("valid names")
            .self_signed(&key)
            .expect("signed");
        let iot = Iot::new("127.0.0.1:8443", "device-role")
            .thing_name("sensor-17")
            .certificate_pem(certificate.pem())
            .private_key_pem(key.serialize_pem());
        let session = session(SessionConfig::iot(iot));
        let device = DeviceTls::open(session.device_identity().expect("an IoT session"))
            .expect("the key matches");
        (session, device)
    }

    fn never() -> Presign {
        Arc::new(|| panic!("a TLS connection presigns nothing"))
    }

    fn tls_config(options: &MqttOptions) -> Arc<rustls::ClientConfig> {
        match options.transport() {
            Transport::Tls(TlsConfiguration::Rustls(config)) => config,
            _ => panic!("not a TLS transport"),
        }
    }

    #[test]
    fn the_sessions_key_is_presented_not_opened_again() {
        let (session, device) = iot_session();
        let plan = session.mqtt(Mqtt::new("127.0.0.1")).expect("valid");
        let options = options(&plan, Some(&device), never()).expect("options");
        assert_eq!(options.client_id(), "sensor-17");
        assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 8883));
        let presented = tls_config(&options)
            .client_auth_cert_resolver
            .resolve(&[], &[SignatureScheme::ECDSA_NISTP256_SHA256])
            .expect("a client certificate");
        assert!(Arc::ptr_eq(&presented, device.key()), "the session's key");
        assert!(tls_config(&options).alpn_protocols.is_empty());
    }

    #[test]
    fn port_443_offers_the_mqtt_alpn() {
        let (session, device) = iot_session();
        let plan = session
            .mqtt(Mqtt::new("127.0.0.1").port(443))
            .expect("valid");
        let options = options(&plan, Some(&device), never()).expect("options");
        assert_eq!(
            tls_config(&options).alpn_protocols,
            vec![b"x-amzn-mqtt-ca".to_vec()]
        );
    }

    /// Runs the options' request modifier on an upgrade request, as rumqttc
    /// does on every connect.
    fn modify(options: &MqttOptions) -> http::Request<()> {
        let modifier = options.request_modifier().expect("a WebSocket modifier");
        let request = http::Request::get("wss://127.0.0.1:9443/mqtt")
            .body(())
            .expect("valid");
        let mut future = modifier(request);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(request) => request,
            Poll::Pending => panic!("a ready presign completes at once"),
        }
    }

    #[test]
    fn every_websocket_connect_gets_a_fresh_url() {
        let session = session(SessionConfig::custom().region("eu-west-1"));
        let plan = session
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .websocket()
                    .port(9443)
                    .client_id("web"),
            )
            .expect("valid");
        let calls = Arc::new(AtomicUsize::new(0));
        let presign: Presign = {
            let calls = calls.clone();
            Arc::new(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                Box::pin(std::future::ready(Ok(format!(
                    "wss://127.0.0.1:9443/mqtt?X-Amz-Signature={n}"
                ))))
            })
        };
        let options = options(&plan, None, presign).expect("options");
        assert_eq!(options.broker_address().0, "wss://127.0.0.1:9443/mqtt");
        assert_eq!(
            modify(&options).uri(),
            "wss://127.0.0.1:9443/mqtt?X-Amz-Signature=0"
        );
        assert_eq!(
            modify(&options).uri(),
            "wss://127.0.0.1:9443/mqtt?X-Amz-Signature=1"
        );
    }

    #[test]
    fn a_url_that_cannot_be_signed_leaves_the_request_unsigned() {
        let session = session(SessionConfig::custom().region("eu-west-1"));
        let plan = session
            .mqtt(Mqtt::new("127.0.0.1").websocket().client_id("web"))
            .expect("valid");
        let presign: Presign = Arc::new(|| {
            Box::pin(std::future::ready(Err(Error::Signing(
                "no credentials".into(),
            ))))
        });
        let options = options(&plan, None, presign).expect("options");
        assert_eq!(modify(&options).uri(), "wss://127.0.0.1:9443/mqtt");
    }
}
