//! AWS IoT Core's credential provider: a device exchanges its X.509
//! certificate for AWS credentials through a role alias, over mutual TLS.
//!
//! The core builds the request and reads the answer; the request says it
//! needs the device's TLS identity ([`TlsIdentity::Device`]), which the
//! adapter holds (a PEM key, or a key inside a PKCS#11 token).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::json;
use crate::secret::Secret;
use crate::validate::{charset, length};

/// How errors name the service.
const SERVICE: &str = "IoT credential provider";
/// The duration range the credential provider accepts.
const DURATION_RANGE: std::ops::RangeInclusive<u64> = 900..=43_200;

/// The TLS identity a request must be sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsIdentity {
    /// Ordinary TLS, trusting the usual roots: STS.
    Default,
    /// Mutual TLS with the session's device certificate and key, trusting
    /// the session's CA if one is set: the IoT credential provider.
    Device,
}

/// PEM text, inline or in a file the adapter reads.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// The PEM text itself (kept as a [`Secret`]: it may be a private key).
    Inline(Secret),
    /// A file holding it.
    File(PathBuf),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::Inline(_) => f.write_str("Inline(<pem>)"),
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Which token of a PKCS#11 module holds the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The slot with this id.
    Slot(u64),
    /// The token with this label.
    Label(String),
}

/// A private key inside a PKCS#11 token (an HSM, a smart card, SoftHSM).
/// The key never leaves the token: the TLS handshake asks it to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11 {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token.
    pub token: Token,
    /// The user PIN.
    pub pin: Secret,
    /// The label of the private key object.
    pub key_label: String,
}

impl Pkcs11 {
    /// A key labelled `key_label` in the token labelled `token_label`.
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: impl Into<Secret>,
        key_label: impl Into<String>,
    ) -> Self {
        Self {
            module: module.into(),
            token: Token::Label(token_label.into()),
            pin: pin.into(),
            key_label: key_label.into(),
        }
    }

    /// The same key, found by slot id instead of token label.
    pub fn in_slot(mut self, slot: u64) -> Self {
        self.token = Token::Slot(slot);
        self
    }

    /// Parses an RFC 7512 URI:
    /// `pkcs11:token=<label>;object=<key label>?module-path=<path>&pin-value=<pin>`
    /// (`slot-id=<n>` may stand for `token`; `pin-source` is not read).
    /// Errors never quote a value of the URI, which holds the PIN.
    pub fn from_uri(uri: &str) -> Result<Self, ConfigError> {
        let (key, pin) = Self::parse_uri(uri)?;
        let pin = pin.ok_or_else(|| ConfigError::new("pkcs11", "the URI needs pin-value"))?;
        Ok(Self { pin, ..key })
    }

    /// The key a URI without `pin-value` names, with `pin` from elsewhere
    /// (the environment, a file): where a URI may be seen by others, as on
    /// a command line, the PIN stays out of it.
    pub fn from_uri_and_pin(uri: &str, pin: Secret) -> Result<Self, ConfigError> {
        match Self::parse_uri(uri)? {
            (_, Some(_)) => Err(ConfigError::new(
                "pkcs11",
                "the URI holds pin-value: take it out, and pass the PIN apart from the URI",
            )),
            (key, None) => Ok(Self { pin, ..key }),
        }
    }

    /// Whether `uri` holds the PIN (`pin-value`), told without parsing the
    /// rest: for callers that must refuse such a URI before anything else,
    /// and without quoting it.
    pub fn uri_holds_pin(uri: &str) -> bool {
        attributes(uri.strip_prefix("pkcs11:").unwrap_or(uri)).any(|attribute| {
            attribute
                .split_once('=')
                .is_some_and(|(name, _)| name == "pin-value")
        })
    }

    /// The key (with an empty PIN) and the URI's `pin-value`.
    fn parse_uri(uri: &str) -> Result<(Self, Option<Secret>), ConfigError> {
        let invalid = |problem: String| ConfigError::new("pkcs11", problem);
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| invalid("a PKCS#11 URI starts with `pkcs11:`".into()))?;
        let (mut module, mut token, mut slot, mut object, mut pin) = (None, None, None, None, None);
        for attribute in attributes(rest) {
            let (name, value) = attribute.split_once('=').ok_or_else(|| {
                invalid("an attribute is not name=value (`;` and `&` separate them)".into())
            })?;
            let value = percent_decode(value)
                .map_err(|problem| invalid(format!("the value of `{name}` {problem}")))?;
            match name {
                "module-path" => module = Some(value),
                "token" => token = Some(value),
                "slot-id" => {
                    let id = value
                        .parse()
                        .map_err(|_| invalid(format!("slot-id `{value}` is not a number")))?;
                    slot = Some(id);
                }
                "object" => object = Some(value),
                "pin-value" => pin = Some(Secret::new(value)),
                // Other attributes (type, id, manufacturer, ...) narrow a
                // search this crate does by label: accepted, not used.
                _ => {}
            }
        }
        let missing = |what: &str| invalid(format!("the URI needs {what}"));
        let module = module.ok_or_else(|| missing("module-path"))?;
        let object = object.ok_or_else(|| missing("object (the key label)"))?;
        let token = match (slot, token) {
            (Some(slot), _) => Token::Slot(slot),
            (None, Some(label)) => Token::Label(label),
            (None, None) => return Err(missing("token or slot-id")),
        };
        let key = Self {
            module: module.into(),
            token,
            pin: Secret::new(String::new()),
            key_label: object,
        };
        Ok((key, pin))
    }
}

/// The attributes of a PKCS#11 URI after `pkcs11:`: the path's, split by
/// `;`, then the query's, split by `&`.
fn attributes(rest: &str) -> impl Iterator<Item = &str> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.split(';')
        .chain(query.split('&'))
        .filter(|attribute| !attribute.is_empty())
}

impl fmt::Debug for Pkcs11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &self.pin)
            .field("key_label", &self.key_label)
            .finish()
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail
                .get(..2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "has a bad %-escape".to_owned())?;
            bytes.push(hex);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 once decoded".to_owned())
}

/// The device's TLS identity: its certificate, and its key as PEM or in a
/// PKCS#11 token; and the CA that signs the credential provider's
/// certificate, if not one of the usual roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The certificate (chain), PEM.
    pub certificate: Pem,
    /// Where the private key is.
    pub key: DeviceKey,
    /// Trust anchors for the endpoint, PEM; the webpki roots if `None`.
    pub ca: Option<Pem>,
}

impl DeviceIdentity {
    /// Checks that there is a certificate and exactly one key for it.
    pub(crate) fn new(
        certificate: Option<Pem>,
        private_key: Option<Pem>,
        pkcs11: Option<Pkcs11>,
        ca: Option<Pem>,
    ) -> Result<Self, ConfigError> {
        let certificate = certificate.ok_or_else(|| {
            ConfigError::new(
                "certificate",
                "is required: the device's X.509 certificate (PEM)",
            )
        })?;
        let key = match (private_key, pkcs11) {
            (Some(pem), None) => DeviceKey::Pem(pem),
            (None, Some(pkcs11)) => {
                length("pkcs11.key_label", &pkcs11.key_label, 1, 1024)?;
                DeviceKey::Pkcs11(pkcs11)
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "private_key",
                    "is required, or a pkcs11 key instead: the certificate's private key",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "pkcs11",
                    "set either private_key or pkcs11, not both",
                ));
            }
        };
        Ok(Self {
            certificate,
            key,
            ca,
        })
    }
}

/// Where a device's private key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKey {
    /// A PEM private key (PKCS#8, PKCS#1 or SEC1).
    Pem(Pem),
    /// A key inside a PKCS#11 token.
    Pkcs11(Pkcs11),
}

/// The parameters of an IoT credential-provider session.
///
/// ```
/// use refresh_session_core::iot::Iot;
///
/// let params = Iot::new("c2example.credentials.iot.eu-west-1.amazonaws.com", "device-role")
///     .thing_name("sensor-17")
///     .certificate_file("/etc/device/cert.pem")
///     .private_key_file("/etc/device/key.pem");
/// # let _ = params;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Iot {
    endpoint: String,
    role_alias: String,
    thing_name: Option<String>,
    duration: Option<Duration>,
    certificate: Option<Pem>,
    private_key: Option<Pem>,
    pkcs11: Option<Pkcs11>,
    ca: Option<Pem>,
}

impl Iot {
    /// Credentials for `role_alias` from the credential provider at
    /// `endpoint` (`<id>.credentials.iot.<region>.amazonaws.com`, from
    /// `aws iot describe-endpoint --endpoint-type iot:CredentialProvider`).
    pub fn new(endpoint: impl Into<String>, role_alias: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            role_alias: role_alias.into(),
            ..Self::default()
        }
    }

    /// Sends `x-amzn-iot-thingname`, for role alias policies that use the
    /// thing name.
    pub fn thing_name(mut self, name: impl Into<String>) -> Self {
        self.thing_name = Some(name.into());
        self
    }

    /// Asks for credentials that live this long (15 minutes to 12 hours;
    /// the role alias's limit applies).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// The device certificate, from a PEM file.
    pub fn certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(Pem::File(path.into()));
        self
    }

    /// The device certificate, as PEM text.
    pub fn certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.certificate = Some(Pem::Inline(Secret::new(pem.into())));
        self
    }

    /// The device's private key, from a PEM file.
    pub fn private_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.private_key = Some(Pem::File(path.into()));
        self
    }

    /// The device's private key, as PEM text.
    pub fn private_key_pem(mut self, pem: impl Into<Secret>) -> Self {
        self.private_key = Some(Pem::Inline(pem.into()));
        self
    }

    /// The device's private key, inside a PKCS#11 token.
    pub fn pkcs11(mut self, key: Pkcs11) -> Self {
        self.pkcs11 = Some(key);
        self
    }

    /// Trust anchors for the endpoint's certificate, from a PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Pem::File(path.into()));
        self
    }

    /// Trust anchors for the endpoint's certificate, as PEM text.
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca = Some(Pem::Inline(Secret::new(pem.into())));
        self
    }

    /// Checks every field; returns the request parameters and the device
    /// identity for the adapter.
    pub(crate) fn validated(self) -> Result<(IotRequest, DeviceIdentity), ConfigError> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        length("role_alias", &self.role_alias, 1, 128)?;
        charset(
            "role_alias",
            &self.role_alias,
            |c| c.is_ascii_alphanumeric() || "_=,@-".contains(c),
            "letters, digits and _=,@-",
        )?;
        if let Some(thing) = &self.thing_name {
            length("thing_name", thing, 1, 128)?;
            charset(
                "thing_name",
                thing,
                |c| c.is_ascii_alphanumeric() || ":_-".contains(c),
                "letters, digits and :_-",
            )?;
        }
        if let Some(duration) = self.duration
            && (duration.subsec_nanos() != 0 || !DURATION_RANGE.contains(&duration.as_secs()))
        {
            return Err(ConfigError::new(
                "duration",
                format!(
                    "must be whole seconds from 900 to 43200, got {} s",
                    duration.as_secs_f64()
                ),
            ));
        }
        let identity =
            DeviceIdentity::new(self.certificate, self.private_key, self.pkcs11, self.ca)?;
        let request = IotRequest {
            endpoint,
            role_alias: self.role_alias,
            thing_name: self.thing_name,
            duration: self.duration,
        };
        Ok((request, identity))
    }
}

/// A credential-provider endpoint: host, port, and the region it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    authority: String,
    region: Option<String>,
}

impl Endpoint {
    /// Accepts `host`, `host:port` or `https://host[:port][/]`. A
    /// `*.credentials.iot.*` host is used as it is; an ATS data endpoint
    /// (`<id>-ats.iot.*`) is rewritten to `<id>.credentials.iot.*` with a
    /// warning; a loopback host is accepted for tests; anything else is an
    /// error.
    fn parse(endpoint: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::new("endpoint", problem);
        let authority = endpoint.strip_prefix("https://").unwrap_or(endpoint);
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains("://") || authority.contains('/') || authority.is_empty() {
            return Err(invalid(format!(
                "`{endpoint}` is not a host such as <id>.credentials.iot.<region>.amazonaws.com"
            )));
        }
        let parsed: http::uri::Authority = authority
            .parse()
            .map_err(|e| invalid(format!("`{endpoint}` is not a host name: {e}")))?;
        let host = parsed.host().to_ascii_lowercase();
        let port = parsed
            .port_u16()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        if let Some((_, region)) = host.split_once(".credentials.iot.") {
            return Ok(Self {
                region: region.split('.').next().map(str::to_owned),
                authority: format!("{host}{port}"),
            });
        }
        if let Some((id, rest)) = host.split_once("-ats.iot.") {
            let rewritten = format!("{id}.credentials.iot.{rest}");
            tracing::warn!(
                target: "refresh_session",
                data_endpoint = %host,
                credentials_endpoint = %rewritten,
                "the IoT endpoint is a data endpoint, not the credential provider's; rewrote it (check `aws iot describe-endpoint --endpoint-type iot:CredentialProvider`)"
            );
            return Ok(Self {
                region: rest.split('.').next().map(str::to_owned),
                authority: format!("{rewritten}{port}"),
            });
        }
        if crate::sts::is_loopback(&host) {
            return Ok(Self {
                authority: format!("{host}{port}"),
                region: None,
            });
        }
        Err(invalid(format!(
            "`{endpoint}` is not an IoT credential provider endpoint; expected <id>.credentials.iot.<region>.amazonaws.com"
        )))
    }

    /// The region the endpoint is in, if its name says.
    pub(crate) fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

/// A validated credential-provider request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IotRequest {
    pub(crate) endpoint: Endpoint,
    role_alias: String,
    pub(crate) thing_name: Option<String>,
    duration: Option<Duration>,
}

impl IotRequest {
    /// `GET https://<endpoint>/role-aliases/<alias>/credentials`.
    pub(crate) fn request(&self) -> Result<http::Request<Vec<u8>>, Error> {
        let uri = format!(
            "https://{}/role-aliases/{}/credentials",
            self.endpoint.authority, self.role_alias
        );
        let mut request = http::Request::get(uri);
        if let Some(thing) = &self.thing_name {
            request = request.header("x-amzn-iot-thingname", thing);
        }
        if let Some(duration) = self.duration {
            request = request.header("x-amzn-iot-credential-duration-seconds", duration.as_secs());
        }
        request
            .body(Vec::new())
            .map_err(|e| Error::Signing(format!("the IoT request could not be built: {e}")))
    }
}

#[derive(Deserialize)]
struct Answer {
    credentials: AnswerCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

/// Reads the credential provider's answer: credentials on HTTP 200, a
/// [`ServiceError`](crate::error::ServiceError) otherwise.
pub fn parse_credentials(response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
    let answer = json::Answer::successful(SERVICE, response)?;
    let credentials = answer.decode::<Answer>("the credentials JSON")?.credentials;
    answer.require(&[
        ("credentials.accessKeyId", &credentials.access_key_id),
        (
            "credentials.secretAccessKey",
            &credentials.secret_access_key,
        ),
        ("credentials.sessionToken", &credentials.session_token),
    ])?;
    let expiration = answer.timestamp("credentials.expiration", &credentials.expiration)?;
    Ok(Credentials::new(
        credentials.access_key_id,
        Secret::new(credentials.secret_access_key),
        Some(Secret::new(credentials.session_token)),
        Some(expiration),
    ))
}

#[cfg(test)]
mod tests;
