//! TLS client configurations, built once per session and shared by every
//! adapter and protocol (HTTPS to STS, mutual TLS to the IoT credential
//! provider, MQTT): rustls with the ring provider, no process-wide state.
//!
//! A device identity is the certificate from its PEM, and its key from PEM
//! or from a PKCS#11 token; the key is checked against the certificate here,
//! so a mismatch is a [`ConfigError`] at build time rather than a failed
//! handshake later.

use std::path::Path;
use std::sync::Arc;

use refresh_session_core::ConfigError;
use refresh_session_core::iot::{DeviceIdentity, DeviceKey, Pem};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

use crate::pkcs11::Pkcs11Key;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors in `ca`, or the webpki roots (as ureq and the AWS
/// SDKs trust) if `None`.
pub fn roots(ca: Option<&Pem>) -> Result<RootCertStore, ConfigError> {
    let Some(pem) = ca else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = RootCertStore::empty();
    for certificate in certificates("ca", pem)? {
        roots.add(certificate).map_err(|e| {
            ConfigError::new("ca", format!("holds a certificate rustls cannot use: {e}"))
        })?;
    }
    Ok(roots)
}

/// A client configuration trusting `roots`, presenting `key` when the
/// server asks for a client certificate, and offering `alpn` if set.
pub fn client_config(
    roots: RootCertStore,
    key: Option<Arc<CertifiedKey>>,
    alpn: Option<&str>,
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        // The ring provider supports the default protocol versions.
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots);
    let mut config = match key {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.map(|p| p.as_bytes().to_vec()).into_iter().collect();
    Arc::new(config)
}

/// Ordinary server-authenticated TLS, trusting the webpki roots: for STS.
pub fn default_config() -> Arc<ClientConfig> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    client_config(roots, None, None)
}

/// A device's TLS identity, opened once per session: its key (for a
/// PKCS#11 key, an open, logged-in token session) and the configuration the
/// credential provider is reached with. Cloning shares both, so an MQTT
/// connection presents the same key without opening the token again.
#[derive(Debug, Clone)]
pub struct DeviceTls {
    key: Arc<CertifiedKey>,
    config: Arc<ClientConfig>,
}

impl DeviceTls {
    /// Reads the certificate, opens the key and checks that they belong
    /// together; trusts the identity's `ca`, else the webpki roots.
    pub fn open(identity: &DeviceIdentity) -> Result<Self, ConfigError> {
        let key = certified_key(identity)?;
        let config = client_config(roots(identity.ca.as_ref())?, Some(key.clone()), None);
        Ok(Self { key, config })
    }

    /// The certificate chain and signing key.
    pub fn key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// Mutual TLS as the device, for the credential provider.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

/// The device's certificate chain and signing key, checked to belong
/// together.
pub fn certified_key(identity: &DeviceIdentity) -> Result<Arc<CertifiedKey>, ConfigError> {
    let chain = certificates("certificate", &identity.certificate)?;
    let (key, field): (Arc<dyn SigningKey>, &'static str) = match &identity.key {
        DeviceKey::Pem(pem) => (pem_key(pem)?, "private_key"),
        DeviceKey::Pkcs11(spec) => (Arc::new(Pkcs11Key::open(spec)?), "pkcs11.key_label"),
    };
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|e| {
        ConfigError::new(field, format!("does not belong to the certificate ({e})"))
    })?;
    Ok(Arc::new(certified))
}

/// Whether a TLS failure is behind `error`: a rustls error anywhere in its
/// chain of sources, including inside `io::Error`s (whose `source()` skips
/// the error they wrap, and which HTTP stacks nest).
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && is_tls_failure(inner)
        {
            return true;
        }
        cause = current.source();
    }
    false
}

fn read(field: &'static str, pem: &Pem) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    match pem {
        Pem::Inline(text) => Ok(Zeroizing::new(text.expose().as_bytes().to_vec())),
        Pem::File(path) => std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|e| ConfigError::new(field, format!("could not read {}: {e}", display(path)))),
    }
}

fn display(path: &Path) -> String {
    format!("`{}`", path.display())
}

fn certificates(
    field: &'static str,
    pem: &Pem,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(field, pem)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(field, format!("is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(ConfigError::new(
            field,
            "holds no certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(chain)
}

fn pem_key(pem: &Pem) -> Result<Arc<dyn SigningKey>, ConfigError> {
    let bytes = read("private_key", pem)?;
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        ConfigError::new(
            "private_key",
            format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM; encrypted keys are not read): {e}"),
        )
    })?;
    rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| {
        ConfigError::new(
            "private_key",
            format!("is not an RSA, ECDSA or Ed25519 key: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn tls_failures_are_found_inside_nested_io_errors() {
        let rustls_error = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let nested = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, rustls_error));
        assert!(is_tls_failure(&nested));
        assert!(!is_tls_failure(&io::Error::other("connection refused")));
    }
}
