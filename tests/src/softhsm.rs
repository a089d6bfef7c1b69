//! SoftHSM2 tokens for tests, made per test run in a temporary directory.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module initialises, so the
//! variable must be in the process's environment from its start; setting
//! it in a running, multi-threaded test process is unsound. A test binary
//! that needs tokens therefore calls [`reexec`] first: the first run
//! creates the directory and runs the binary again with the variable set.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// The SoftHSM2 module Debian's `softhsm2` package installs.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A copy of the module in a temporary directory, to delete while a session
/// still uses it: a session that reloaded the module would then fail.
pub struct ModuleCopy {
    dir: tempfile::TempDir,
}

impl ModuleCopy {
    /// Copies the module.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::copy(MODULE, dir.path().join("libsofthsm2-copy.so")).expect("the module copies");
        Self { dir }
    }

    /// Where the copy is.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("libsofthsm2-copy.so")
    }

    /// Deletes the copy.
    pub fn delete(&self) {
        std::fs::remove_file(self.path()).expect("the copy is deleted");
    }
}

impl Default for ModuleCopy {
    fn default() -> Self {
        Self::new()
    }
}
/// Tells the second run that it is the second.
const CHILD: &str = "REFRESH_SESSION_SOFTHSM_RUN";
const SO_PIN: &str = "so-pin-1234";

/// In the first run: makes a token directory, runs this binary again with
/// `SOFTHSM2_CONF` pointing at it, removes the directory, and returns the
/// second run's exit code. In the second run: `None`, carry on.
pub fn reexec() -> Option<i32> {
    if std::env::var_os(CHILD).is_some() {
        return None;
    }
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} is missing: install softhsm2 (scripts/test does)"
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("a token directory");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("a config file");
    let status = Command::new(std::env::current_exe().expect("this binary"))
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, "1")
        .status()
        .expect("the second run starts");
    Some(status.code().unwrap_or(1))
}

/// The module, loaded once for the process: unloading it (dropping the
/// last handle) would lose SoftHSM's slot state.
fn module() -> Pkcs11 {
    static MODULE_HANDLE: OnceLock<Pkcs11> = OnceLock::new();
    MODULE_HANDLE
        .get_or_init(|| {
            let module = Pkcs11::new(MODULE).expect("SoftHSM loads");
            match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                Ok(())
                | Err(P11Error::Pkcs11(
                    RvError::CryptokiAlreadyInitialized,
                    Function::Initialize,
                )) => {}
                Err(e) => panic!("SoftHSM does not initialise: {e}"),
            }
            module
        })
        .clone()
}

/// An initialised token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its label.
    pub label: String,
    /// Its user PIN.
    pub pin: String,
    slot: Slot,
}

/// The kinds of key TLS can use from a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// RSA, 2048 bits.
    Rsa2048,
}

/// The public half of a key generated in a token, ready to be certified.
#[derive(Debug, Clone)]
pub struct HsmPublicKey {
    /// The key pair's label.
    pub label: String,
    raw: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for HsmPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

impl Token {
    /// Initialises the free slot as a token labelled `label` with user PIN
    /// `pin`.
    pub fn create(label: &str, pin: &str) -> Self {
        let module = module();
        let slot = module
            .get_slots_with_token()
            .expect("slots")
            .into_iter()
            .find(|slot| {
                !module
                    .get_token_info(*slot)
                    .expect("token info")
                    .token_initialized()
            })
            .expect("SoftHSM offers a free slot");
        module
            .init_token(slot, &AuthPin::from(SO_PIN), label)
            .expect("the token initialises");
        // SoftHSM moves an initialised token to a new slot id.
        let slot = module
            .get_slots_with_initialized_token()
            .expect("slots")
            .into_iter()
            .find(|slot| module.get_token_info(*slot).expect("token info").label() == label)
            .expect("the new token");
        let session = module.open_rw_session(slot).expect("a session");
        session
            .login(UserType::So, Some(&AuthPin::from(SO_PIN)))
            .expect("SO login");
        session
            .init_pin(&AuthPin::from(pin))
            .expect("the user PIN is set");
        Self {
            label: label.to_owned(),
            pin: pin.to_owned(),
            slot,
        }
    }

    /// Generates a key pair labelled `label` inside the token; the private
    /// half cannot leave it.
    pub fn generate(&self, label: &str, kind: KeyKind) -> HsmPublicKey {
        let module = module();
        // The session (and so the login) ends when this function returns:
        // login state belongs to the whole process, and tests of a wrong
        // PIN need it gone.
        let session = module.open_rw_session(self.slot).expect("a session");
        session
            .login(UserType::User, Some(&AuthPin::from(self.pin.as_str())))
            .expect("user login");
        let common = [
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(label.as_bytes().to_vec()),
        ];
        let private = [
            &common[..],
            &[
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
            ],
        ]
        .concat();
        let (mechanism, public, algorithm) = match kind {
            KeyKind::P256 | KeyKind::P384 => {
                let (oid, algorithm): (&[u8], _) = if kind == KeyKind::P256 {
                    (
                        &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
                        &rcgen::PKCS_ECDSA_P256_SHA256,
                    )
                } else {
                    (
                        &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
                        &rcgen::PKCS_ECDSA_P384_SHA384,
                    )
                };
                let public = [
                    &common[..],
                    &[
                        Attribute::Verify(true),
                        Attribute::KeyType(KeyType::EC),
                        Attribute::EcParams(oid.to_vec()),
                    ],
                ]
                .concat();
                (Mechanism::EccKeyPairGen, public, algorithm)
            }
            KeyKind::Rsa2048 => {
                let public = [
                    &common[..],
                    &[
                        Attribute::Verify(true),
                        Attribute::ModulusBits(2048.into()),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ],
                ]
                .concat();
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    public,
                    &rcgen::PKCS_RSA_SHA256,
                )
            }
        };
        let (public_handle, _) = session
            .generate_key_pair(&mechanism, &public, &private)
            .expect("the token generates the key pair");
        let wanted = [
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ];
        let (mut point, mut modulus, mut exponent) = (None, None, None);
        for attribute in session
            .get_attributes(public_handle, &wanted)
            .expect("public attributes")
        {
            match attribute {
                Attribute::EcPoint(v) => point = Some(v),
                Attribute::Modulus(v) => modulus = Some(v),
                Attribute::PublicExponent(v) => exponent = Some(v),
                _ => {}
            }
        }
        let raw = match (point, modulus, exponent) {
            // SoftHSM wraps the point in a DER OCTET STRING: 04 <len> 04 X Y.
            (Some(point), ..) => point[2..].to_vec(),
            (None, Some(n), Some(e)) => rsa_public_key(&n, &e),
            _ => panic!("the token returned no public key"),
        };
        HsmPublicKey {
            label: label.to_owned(),
            raw,
            algorithm,
        }
    }
}

/// `RSAPublicKey ::= SEQUENCE { INTEGER n, INTEGER e }`, as X.509 wants it.
fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    fn integer(value: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        if value.first().is_some_and(|b| b & 0x80 != 0) {
            body.push(0);
        }
        body.extend_from_slice(value);
        wrap(0x02, &body)
    }
    fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            let len = body.len().to_be_bytes();
            let len: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | len.len() as u8);
            out.extend(len);
        }
        out.extend_from_slice(body);
        out
    }
    wrap(0x30, &[integer(modulus), integer(exponent)].concat())
}
