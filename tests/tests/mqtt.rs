//! MQTT over an IoT session's identity, in both adapters, against mosquitto
//! on 127.0.0.1: mutual TLS with the session's PEM key (a foreign CA's
//! device refused), a broker restart ridden out, and WebSockets whose
//! presigned URLs botocore reproduces, re-signed with fresh credentials
//! after a refresh. (The PKCS#11 key's round trips are in `iot_pkcs11.rs`.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use refresh_session_io::tls::is_tls_failure;
use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::mosquitto::Mosquitto;
use refresh_session_tests::mqtt_client::Failure;
use refresh_session_tests::pki::{Authority, Identity};
use refresh_session_tests::presign_oracle::{PresignJob, botocore_presign};
use refresh_session_tests::ws_recorder::WsRecorder;

const ALIAS: &str = "device-role";
const THING: &str = "sensor-17";
const REGION: &str = "eu-west-1";
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// The peers every test needs: a CA, the broker, the credential provider,
/// and a device.
struct Peers {
    ca: Authority,
    broker: Mosquitto,
    provider: LoopbackIot,
    device: Identity,
}

impl Peers {
    fn start(lifetime: Duration) -> Self {
        let ca = Authority::new("MQTT test CA");
        let broker = Mosquitto::start(&ca);
        let provider = LoopbackIot::start(
            ca.server_config(&ca.server(false)),
            IotOptions {
                role_alias: ALIAS.to_owned(),
                lifetime,
            },
        );
        let device = ca.device(THING);
        Self {
            ca,
            broker,
            provider,
            device,
        }
    }

    fn iot(&self) -> refresh_session_core::iot::Iot {
        refresh_session_core::iot::Iot::new(self.provider.endpoint(), ALIAS)
            .thing_name(THING)
            .certificate_pem(&self.device.certificate)
            .private_key_pem(self.device.key.as_str())
            .ca_pem(&self.ca.certificate)
    }

    /// The secret and token the provider issued with `access_key_id`.
    fn issued_secret(&self, access_key_id: &str) -> (String, String) {
        let n = self
            .provider
            .issued()
            .iter()
            .position(|issued| issued.access_key_id == access_key_id)
            .expect("a key the provider issued")
            + 1;
        (format!("iot-secret-{n}"), format!("iot-token-{n}"))
    }

    /// Checks every recorded WebSocket URL against botocore's presigner
    /// given the same time, region and credentials; returns the access key
    /// of each, in order.
    fn check_presigned(&self, recorder: &WsRecorder) -> Vec<String> {
        let targets = recorder.targets();
        let jobs: Vec<PresignJob> = targets
            .iter()
            .map(|target| {
                let query = query(target);
                let credential = &query["X-Amz-Credential"];
                let access_key = credential.split("%2F").next().expect("a key id");
                let (secret_key, token) = self.issued_secret(access_key);
                PresignJob {
                    url: format!("https://127.0.0.1:{}/mqtt", recorder.port()),
                    region: REGION.to_owned(),
                    timestamp: query["X-Amz-Date"].clone(),
                    access_key: access_key.to_owned(),
                    secret_key,
                    token: Some(token),
                }
            })
            .collect();
        let expected = botocore_presign(&jobs);
        for (target, expected) in targets.iter().zip(&expected) {
            assert_eq!(
                &format!("wss://127.0.0.1:{}{target}", recorder.port()),
                expected,
                "our URL is botocore's"
            );
        }
        jobs.into_iter().map(|job| job.access_key).collect()
    }
}

fn query(target: &str) -> HashMap<String, String> {
    let (_, query) = target.split_once('?').expect("a query string");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn assert_refused(result: Result<(), Failure>) {
    match result {
        Err(Failure::Connection(error)) => {
            assert!(is_tls_failure(&*error), "a TLS failure: {error:?}");
        }
        other => panic!("the broker refuses the foreign device: {other:?}"),
    }
}

mod blocking {
    use refresh_session_blocking::prelude::*;
    use refresh_session_tests::mqtt_client::round_trip;

    use super::*;

    fn session(peers: &Peers) -> RefreshableSession {
        RefreshableSession::iot(peers.iot())
            .advisory_timeout(Duration::from_secs(1))
            .mandatory_timeout(Duration::from_millis(500))
            .build()
            .expect("valid")
    }

    #[test]
    fn a_round_trip_over_mutual_tls_with_the_sessions_key() {
        let peers = Peers::start(Duration::from_secs(3600));
        let session = session(&peers);
        let (client, mut connection) = session
            .mqtt(Mqtt::new("127.0.0.1").port(peers.broker.tls_port))
            .expect("valid options");
        round_trip(&client, &mut connection, "devices/sensor-17", b"hello", 0)
            .expect("the message comes back");
        assert!(
            peers.provider.calls().is_empty(),
            "mutual TLS needs no AWS credentials"
        );
    }

    #[test]
    fn a_device_from_another_ca_is_refused() {
        let peers = Peers::start(Duration::from_secs(3600));
        let foreign = Authority::new("Foreign CA").device("intruder");
        let (client, mut connection) = session(&peers)
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .port(peers.broker.tls_port)
                    .client_id("intruder")
                    .certificate_pem(&foreign.certificate)
                    .private_key_pem(foreign.key.as_str()),
            )
            .expect("valid options");
        assert_refused(round_trip(&client, &mut connection, "t", b"x", 0));
    }

    #[test]
    fn the_client_resumes_after_the_broker_restarts() {
        let peers = Peers::start(Duration::from_secs(3600));
        let (client, mut connection) = session(&peers)
            .mqtt(Mqtt::new("127.0.0.1").port(peers.broker.tls_port))
            .expect("valid options");
        round_trip(&client, &mut connection, "devices/a", b"before", 0).expect("first");
        peers.broker.restart();
        round_trip(&client, &mut connection, "devices/a", b"after", 50)
            .expect("delivered after the restart");
    }

    #[test]
    fn a_round_trip_over_mosquittos_tls_websocket_listener() {
        let peers = Peers::start(Duration::from_secs(3600));
        let (client, mut connection) = session(&peers)
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .websocket()
                    .port(peers.broker.wss_port)
                    .region(REGION),
            )
            .expect("valid options");
        round_trip(&client, &mut connection, "devices/ws", b"over wss", 0)
            .expect("the message comes back");
    }

    #[test]
    fn websocket_urls_are_botocores_and_re_signed_after_a_refresh() {
        let peers = Peers::start(Duration::from_secs(3));
        let recorder = WsRecorder::start(
            peers
                .ca
                .server_config_for_any_client(&peers.ca.server(false)),
            peers.broker.ws_port,
        );
        let session = session(&peers);
        let (client, mut connection) = session
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .websocket()
                    .port(recorder.port())
                    .region(REGION),
            )
            .expect("valid options");
        round_trip(&client, &mut connection, "devices/ws", b"first", 0).expect("first");
        let first = session.credentials().expect("credentials");
        let deadline = Instant::now() + TEST_LIMIT;
        while session.credentials().expect("credentials") == first {
            assert!(Instant::now() < deadline, "no refresh");
            std::thread::sleep(Duration::from_millis(50));
        }
        recorder.disconnect_all();
        round_trip(&client, &mut connection, "devices/ws", b"second", 50).expect("second");
        let keys = peers.check_presigned(&recorder);
        assert!(keys.len() >= 2, "{keys:?}");
        assert_eq!(keys[0], first.access_key_id());
        assert_ne!(
            keys.last(),
            keys.first(),
            "the reconnect was signed with the refreshed credentials"
        );
    }
}

mod tokio_adapter {
    use refresh_session_tests::mqtt_client::round_trip_async;
    use refresh_session_tokio::prelude::*;

    use super::*;

    async fn session(peers: &Peers) -> RefreshableSession {
        RefreshableSession::iot(peers.iot())
            .advisory_timeout(Duration::from_secs(1))
            .mandatory_timeout(Duration::from_millis(500))
            .build()
            .await
            .expect("valid")
    }

    #[tokio::test]
    async fn a_round_trip_over_mutual_tls_and_a_foreign_device_refused() {
        let peers = Peers::start(Duration::from_secs(3600));
        let session = session(&peers).await;
        let (client, mut event_loop) = session
            .mqtt(Mqtt::new("127.0.0.1").port(peers.broker.tls_port))
            .await
            .expect("valid options");
        round_trip_async(&client, &mut event_loop, "devices/tokio", b"hello", 0)
            .await
            .expect("the message comes back");

        let foreign = Authority::new("Foreign CA").device("intruder");
        let (client, mut event_loop) = session
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .port(peers.broker.tls_port)
                    .client_id("intruder")
                    .certificate_pem(&foreign.certificate)
                    .private_key_pem(foreign.key.as_str()),
            )
            .await
            .expect("valid options");
        assert_refused(round_trip_async(&client, &mut event_loop, "t", b"x", 0).await);
    }

    #[tokio::test]
    async fn the_client_resumes_after_the_broker_restarts() {
        let peers = Peers::start(Duration::from_secs(3600));
        let (client, mut event_loop) = session(&peers)
            .await
            .mqtt(Mqtt::new("127.0.0.1").port(peers.broker.tls_port))
            .await
            .expect("valid options");
        round_trip_async(&client, &mut event_loop, "devices/a", b"before", 0)
            .await
            .expect("first");
        peers.broker.restart();
        round_trip_async(&client, &mut event_loop, "devices/a", b"after", 50)
            .await
            .expect("delivered after the restart");
    }

    #[tokio::test]
    async fn websockets_over_tls_and_re_signed_after_a_refresh() {
        let peers = Peers::start(Duration::from_secs(3));
        let session = session(&peers).await;
        let (client, mut event_loop) = session
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .websocket()
                    .port(peers.broker.wss_port)
                    .region(REGION),
            )
            .await
            .expect("valid options");
        round_trip_async(&client, &mut event_loop, "devices/wss", b"over wss", 0)
            .await
            .expect("the message comes back over mosquitto's TLS WebSocket listener");

        let recorder = WsRecorder::start(
            peers
                .ca
                .server_config_for_any_client(&peers.ca.server(false)),
            peers.broker.ws_port,
        );
        let (client, mut event_loop) = session
            .mqtt(
                Mqtt::new("127.0.0.1")
                    .websocket()
                    .port(recorder.port())
                    .region(REGION),
            )
            .await
            .expect("valid options");
        round_trip_async(&client, &mut event_loop, "devices/ws", b"first", 0)
            .await
            .expect("first");
        let first = session.credentials().await.expect("credentials");
        let deadline = Instant::now() + TEST_LIMIT;
        while session.credentials().await.expect("credentials") == first {
            assert!(Instant::now() < deadline, "no refresh");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        recorder.disconnect_all();
        round_trip_async(&client, &mut event_loop, "devices/ws", b"second", 50)
            .await
            .expect("second");
        let keys = peers.check_presigned(&recorder);
        assert!(keys.len() >= 2, "{keys:?}");
        assert_ne!(keys.last(), keys.first(), "re-signed after the refresh");
    }
}
