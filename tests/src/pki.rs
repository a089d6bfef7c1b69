//! A test PKI made at test time with rcgen: a CA, server certificates for
//! 127.0.0.1 (valid and expired), device certificates for keys made here or
//! held in an HSM, and a foreign CA whose devices the servers refuse.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub certificate: String,
    /// The private key (PKCS#8).
    pub key: String,
}

/// A certificate authority.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub certificate: String,
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).expect("self-signed").pem();
        Self {
            issuer: Issuer::new(params, key),
            certificate,
        }
    }

    /// A server certificate for localhost and 127.0.0.1; `expired` makes
    /// one that ran out in 2021.
    pub fn server(&self, expired: bool) -> Identity {
        let key = KeyPair::generate().expect("a P-256 key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("valid names");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            params.serial_number = Some(SerialNumber::from(2u64));
        }
        Identity {
            certificate: params.signed_by(&key, &self.issuer).expect("signed").pem(),
            key: key.serialize_pem(),
        }
    }

    /// A device certificate named `thing` with a new P-256 key.
    pub fn device(&self, thing: &str) -> Identity {
        let key = KeyPair::generate().expect("a P-256 key");
        Identity {
            certificate: self.certify(thing, &key),
            key: key.serialize_pem(),
        }
    }

    /// A device certificate named `thing` for `public_key`, wherever its
    /// private half is (an HSM).
    pub fn certify(&self, thing: &str, public_key: &impl PublicKeyData) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.distinguished_name.push(DnType::CommonName, thing);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params
            .signed_by(public_key, &self.issuer)
            .expect("signed")
            .pem()
    }

    /// A TLS server configuration presenting `server` and requiring client
    /// certificates issued by this CA.
    pub fn server_config(&self, server: &Identity) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.certificate.as_bytes()).expect("PEM"))
            .expect("a CA certificate");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("a verifier");
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_client_cert_verifier(verifier);
        with_identity(config, server)
    }

    /// A TLS server configuration presenting `server` to any client.
    pub fn server_config_for_any_client(&self, server: &Identity) -> Arc<ServerConfig> {
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS 1.2 and 1.3")
                .with_no_client_auth();
        with_identity(config, server)
    }
}

fn with_identity(
    config: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    server: &Identity,
) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(server.certificate.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM");
    let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).expect("PEM");
    Arc::new(config.with_single_cert(chain, key).expect("a matching key"))
}
