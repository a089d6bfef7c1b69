//! MQTT to AWS IoT Core with a session's identity: over mutual TLS with
//! the device's certificate and key, or over a WebSocket whose URL is
//! presigned (SigV4) with the session's current credentials.
//!
//! [`Mqtt`] holds the options a user sets; a session resolves them into an
//! [`MqttPlan`] (the thing name as client id, the session's device identity
//! and region where the options leave them out). The adapters hand the plan
//! to an MQTT client, and ask [`MqttPlan::websocket_url`] for a fresh URL
//! on every (re)connect, so a connection outlives the credentials it
//! started with.

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::iot::{DeviceIdentity, Pem, Pkcs11};
use crate::secret::Secret;
use crate::sign::presign_url;
use crate::validate::{charset, length};

/// The ALPN protocol that lets AWS IoT Core take MQTT over mutual TLS on
/// port 443.
pub const ALPN_MQTT_ON_443: &str = "x-amzn-mqtt-ca";
/// The service name WebSocket URLs are signed for.
const SIGNING_SERVICE: &str = "iotdevicegateway";
/// How long a presigned URL is good for, as in AWS's examples. A URL is
/// made for each connect, and the connection it opens outlives it.
const URL_LIFETIME: Duration = Duration::from_secs(86_400);
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// How the client reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MqttTransport {
    /// MQTT over mutual TLS with a device certificate: port 8883, or 443
    /// with ALPN `x-amzn-mqtt-ca`.
    #[default]
    Tls,
    /// MQTT over a WebSocket (`wss://<endpoint>/mqtt`, port 443) whose URL
    /// is signed with the session's credentials: no device certificate.
    WebSocket,
}

/// The options of an MQTT connection over a session's identity.
///
/// ```
/// use std::time::Duration;
/// use refresh_session_core::mqtt::Mqtt;
///
/// let options = Mqtt::new("a1example-ats.iot.eu-west-1.amazonaws.com")
///     .client_id("sensor-17") // default: the session's thing name
///     .keep_alive(Duration::from_secs(300));
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mqtt {
    endpoint: String,
    transport: MqttTransport,
    port: Option<u16>,
    client_id: Option<String>,
    keep_alive: Duration,
    clean_session: bool,
    region: Option<String>,
    certificate: Option<Pem>,
    private_key: Option<Pem>,
    pkcs11: Option<Pkcs11>,
    ca: Option<Pem>,
}

impl Mqtt {
    /// A connection to the broker at `endpoint`: the account's data
    /// endpoint (`<id>-ats.iot.<region>.amazonaws.com`, from
    /// `aws iot describe-endpoint --endpoint-type iot:Data-ATS`).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            transport: MqttTransport::Tls,
            port: None,
            client_id: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            clean_session: true,
            region: None,
            certificate: None,
            private_key: None,
            pkcs11: None,
            ca: None,
        }
    }

    /// Connects over a WebSocket signed with the session's credentials
    /// instead of mutual TLS.
    pub fn websocket(mut self) -> Self {
        self.transport = MqttTransport::WebSocket;
        self
    }

    /// The broker's port: default 8883 for TLS (443 also works, with ALPN),
    /// 443 for WebSockets.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The MQTT client id (default: the session's thing name).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// How often the client pings an idle connection (default 60 s; AWS IoT
    /// Core takes 30 s to 1200 s).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Whether the broker forgets the client's subscriptions and queued
    /// messages when it disconnects (default true).
    pub fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// The region WebSocket URLs are signed for (default: the one the
    /// endpoint names, else the session's).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// A device certificate other than the session's, from a PEM file.
    pub fn certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(Pem::File(path.into()));
        self
    }

    /// A device certificate other than the session's, as PEM text.
    pub fn certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.certificate = Some(Pem::Inline(Secret::new(pem)));
        self
    }

    /// The private key of [`certificate_file`](Self::certificate_file) or
    /// [`certificate_pem`](Self::certificate_pem), from a PEM file.
    pub fn private_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.private_key = Some(Pem::File(path.into()));
        self
    }

    /// The private key of the certificate set here, as PEM text.
    pub fn private_key_pem(mut self, pem: impl Into<Secret>) -> Self {
        self.private_key = Some(Pem::Inline(pem.into()));
        self
    }

    /// The private key of the certificate set here, in a PKCS#11 token.
    pub fn pkcs11(mut self, key: Pkcs11) -> Self {
        self.pkcs11 = Some(key);
        self
    }

    /// Trust anchors for the broker's certificate, from a PEM file
    /// (default: the session's `ca`, else the webpki roots).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Pem::File(path.into()));
        self
    }

    /// Trust anchors for the broker's certificate, as PEM text.
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca = Some(Pem::Inline(Secret::new(pem)));
        self
    }

    /// Checks the options and fills in what they leave to `session`.
    pub(crate) fn resolve(self, session: SessionIdentity<'_>) -> Result<MqttPlan, ConfigError> {
        let host = host(&self.endpoint)?;
        let aws = host.ends_with(".amazonaws.com");
        let port = self.checked_port(aws)?;
        let client_id = self
            .client_id
            .or_else(|| session.thing_name.map(str::to_owned))
            .ok_or_else(|| {
                ConfigError::new(
                    "client_id",
                    "is required: the session has no thing name to default to",
                )
            })?;
        length("client_id", &client_id, 1, 128)?;
        charset(
            "client_id",
            &client_id,
            |c| !c.is_control() && c != '#' && c != '+',
            "printable characters other than # and +",
        )?;
        check_keep_alive(self.keep_alive, aws)?;
        let has_own_identity =
            self.certificate.is_some() || self.private_key.is_some() || self.pkcs11.is_some();
        let ca = self
            .ca
            .or_else(|| session.device.and_then(|d| d.ca.clone()));
        let transport = match self.transport {
            MqttTransport::Tls => {
                let identity = if has_own_identity {
                    MqttIdentity::Own(DeviceIdentity::new(
                        self.certificate,
                        self.private_key,
                        self.pkcs11,
                        // The plan's `ca` is what the connection trusts.
                        None,
                    )?)
                } else if session.device.is_some() {
                    MqttIdentity::Session
                } else {
                    return Err(ConfigError::new(
                        "certificate",
                        "is required for MQTT over mutual TLS: this session has no device certificate; set one (and its key) here, or use websocket()",
                    ));
                };
                let alpn = (port == 443).then_some(ALPN_MQTT_ON_443);
                PlannedTransport::Tls { identity, alpn }
            }
            MqttTransport::WebSocket if has_own_identity => {
                return Err(ConfigError::new(
                    "certificate",
                    "applies to MQTT over mutual TLS; a WebSocket connection is signed with the session's credentials",
                ));
            }
            MqttTransport::WebSocket => {
                let region = self
                    .region
                    .or_else(|| region_of(&host))
                    .or_else(|| session.region.map(str::to_owned))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "region",
                            "is required to sign the WebSocket URL: the endpoint does not name one and the session has none",
                        )
                    })?;
                PlannedTransport::WebSocket { region }
            }
        };
        Ok(MqttPlan {
            host,
            port,
            client_id,
            keep_alive: self.keep_alive,
            clean_session: self.clean_session,
            ca,
            transport,
        })
    }

    fn checked_port(&self, aws: bool) -> Result<u16, ConfigError> {
        let (default, allowed): (u16, &[u16]) = match self.transport {
            MqttTransport::Tls => (8883, &[8883, 443]),
            MqttTransport::WebSocket => (443, &[443]),
        };
        let port = self.port.unwrap_or(default);
        if port == 0 {
            return Err(ConfigError::new("port", "must not be 0"));
        }
        if aws && !allowed.contains(&port) {
            return Err(ConfigError::new(
                "port",
                format!("AWS IoT Core takes this transport on port {allowed:?}, not {port}"),
            ));
        }
        Ok(port)
    }
}

/// What a session contributes to an MQTT connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionIdentity<'a> {
    pub(crate) thing_name: Option<&'a str>,
    pub(crate) device: Option<&'a DeviceIdentity>,
    pub(crate) region: Option<&'a str>,
}

/// A checked MQTT connection, ready for an MQTT client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MqttPlan {
    /// The broker's host name.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// The MQTT client id.
    pub client_id: String,
    /// The keep-alive interval, whole seconds.
    pub keep_alive: Duration,
    /// Whether the session is clean.
    pub clean_session: bool,
    /// Trust anchors for the broker; the webpki roots if `None`.
    pub ca: Option<Pem>,
    /// How to connect.
    pub transport: PlannedTransport,
}

/// How a planned connection reaches the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedTransport {
    /// Mutual TLS as `identity`, offering `alpn` if set.
    Tls {
        /// The certificate and key to present.
        identity: MqttIdentity,
        /// The ALPN protocol to offer (on port 443).
        alpn: Option<&'static str>,
    },
    /// A WebSocket, its URL signed for `region`.
    WebSocket {
        /// The region URLs are signed for.
        region: String,
    },
}

/// Which certificate and key an MQTT connection presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttIdentity {
    /// The session's own: the same key (an open PKCS#11 session included),
    /// not opened again.
    Session,
    /// One set on the [`Mqtt`] options.
    Own(DeviceIdentity),
}

impl MqttPlan {
    /// The WebSocket URL without its signature: where the client connects.
    pub fn websocket_base(&self) -> String {
        format!("wss://{}/mqtt", self.authority())
    }

    /// `host[:port]`, the port left out when it is the default one, as in
    /// the `Host` header the URL is signed for.
    fn authority(&self) -> String {
        match self.port {
            443 => self.host.clone(),
            port => format!("{}:{port}", self.host),
        }
    }

    /// A `wss://<host>/mqtt` URL presigned with `credentials` at `now` (AWS's
    /// time): SigV4 in the query string for `iotdevicegateway`, the session
    /// token appended after the signature as AWS IoT requires. Fails for a
    /// plan that is not a WebSocket one.
    pub fn websocket_url(
        &self,
        credentials: &Credentials,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        let PlannedTransport::WebSocket { region } = &self.transport else {
            return Err(Error::Signing(
                "only a WebSocket connection has a presigned URL".into(),
            ));
        };
        let signed = presign_url(
            &format!("https://{}/mqtt", self.authority()),
            credentials,
            region,
            SIGNING_SERVICE,
            URL_LIFETIME,
            now,
        )?;
        Ok(signed.replacen("https://", "wss://", 1))
    }
}

/// The host of `endpoint`: a bare DNS name or IP address.
fn host(endpoint: &str) -> Result<String, ConfigError> {
    let invalid = |problem: String| ConfigError::new("endpoint", problem);
    let parsed: http::uri::Authority = endpoint
        .parse()
        .map_err(|e| invalid(format!("`{endpoint}` is not a host name: {e}")))?;
    if parsed.port().is_some() || parsed.as_str().contains('@') {
        return Err(invalid(format!(
            "`{endpoint}` must be a host alone, such as <id>-ats.iot.<region>.amazonaws.com; set the port with port()"
        )));
    }
    Ok(parsed.host().to_ascii_lowercase())
}

/// The region an IoT data endpoint names: `<id>-ats.iot.<region>.amazonaws.com`.
fn region_of(host: &str) -> Option<String> {
    let (_, rest) = host.split_once(".iot.")?;
    let region = rest.split('.').next()?;
    (!region.is_empty()).then(|| region.to_owned())
}

fn check_keep_alive(keep_alive: Duration, aws: bool) -> Result<(), ConfigError> {
    let range = if aws {
        30..=1200
    } else {
        1..=u64::from(u16::MAX)
    };
    if keep_alive.subsec_nanos() != 0 || !range.contains(&keep_alive.as_secs()) {
        return Err(ConfigError::new(
            "keep_alive",
            format!(
                "must be whole seconds from {} to {}, got {} s",
                range.start(),
                range.end(),
                keep_alive.as_secs_f64()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
