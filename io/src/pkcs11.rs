//! A private key inside a PKCS#11 token as a rustls signing key: the TLS
//! handshake asks the token to sign and the key never leaves it.
//!
//! A module is loaded and initialised once per process (PKCS#11 allows one
//! initialisation per process) and shared; each key opens its own session
//! and logs in once, and the session is kept for every later handshake
//! (boto3-refresh-session reloads the module on every refresh). ECDSA keys
//! (P-256, P-384) sign a digest computed here, since tokens such as SoftHSM
//! lack `CKM_ECDSA_SHA256`, and the token's raw `r || s` is DER-encoded as
//! TLS wants; RSA keys sign with PSS (TLS 1.3) or PKCS#1 v1.5, hashing in
//! the token.
//!
//! Signing blocks for as long as the token takes: fast for SoftHSM, slower
//! for a smart card.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use refresh_session_core::ConfigError;
use refresh_session_core::iot::{Pkcs11 as Pkcs11Spec, Token};
use ring::digest;
use rustls::pki_types::{SubjectPublicKeyInfoDer, alg_id};
use rustls::sign::{Signer, SigningKey, public_key_to_spki};
use rustls::{SignatureAlgorithm, SignatureScheme};

/// The modules this process has loaded, by path.
static MODULES: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();

const P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    P256,
    P384,
    Rsa,
}

/// An open token session and the key to sign with.
#[derive(Debug)]
struct OpenKey {
    // Keeps the module loaded for as long as the session lives.
    _module: Pkcs11,
    session: Mutex<Session>,
    key: ObjectHandle,
}

/// A PKCS#11 private key that rustls can sign with.
#[derive(Debug)]
pub(crate) struct Pkcs11Key {
    token: Arc<OpenKey>,
    kind: Kind,
    spki: SubjectPublicKeyInfoDer<'static>,
}

impl Pkcs11Key {
    /// Loads the module (once per process), finds the token, logs in and
    /// finds the key. Each failure names the field to fix.
    pub(crate) fn open(spec: &Pkcs11Spec) -> Result<Self, ConfigError> {
        let module = module(&spec.module)?;
        let slot = slot(&module, spec)?;
        let session = module.open_ro_session(slot).map_err(|e| {
            ConfigError::new("pkcs11.token", format!("could not open a session: {e}"))
        })?;
        let info = module
            .get_token_info(slot)
            .map_err(|e| ConfigError::new("pkcs11.token", format!("could not be read: {e}")))?;
        pin_tries_left(info.user_pin_final_try(), info.user_pin_locked())?;
        login(&session, spec)?;
        let key = find(&session, ObjectClass::PRIVATE_KEY, &spec.key_label)?.ok_or_else(|| {
            ConfigError::new(
                "pkcs11.key_label",
                format!(
                    "the token holds no private key labelled `{}`",
                    spec.key_label
                ),
            )
        })?;
        let (kind, spki) = public_key(&session, key, &spec.key_label)?;
        Ok(Self {
            token: Arc::new(OpenKey {
                _module: module,
                session: Mutex::new(session),
                key,
            }),
            kind,
            spki,
        })
    }
}

fn module(path: &PathBuf) -> Result<Pkcs11, ConfigError> {
    let invalid = |problem: String| ConfigError::new("pkcs11.module", problem);
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, loaded)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(loaded.clone());
    }
    let loaded = Pkcs11::new(path)
        .map_err(|e| invalid(format!("could not load `{}`: {e}", path.display())))?;
    match loaded.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
        Err(e) => {
            return Err(invalid(format!(
                "`{}` failed to initialise: {e}",
                path.display()
            )));
        }
    }
    modules.push((path.clone(), loaded.clone()));
    Ok(loaded)
}

fn slot(module: &Pkcs11, spec: &Pkcs11Spec) -> Result<Slot, ConfigError> {
    let invalid = |problem: String| ConfigError::new("pkcs11.token", problem);
    let slots = module
        .get_slots_with_initialized_token()
        .map_err(|e| invalid(format!("could not list the module's tokens: {e}")))?;
    let label = |slot: &Slot| {
        module
            .get_token_info(*slot)
            .map(|info| info.label().to_owned())
            .unwrap_or_default()
    };
    let found = match &spec.token {
        Token::Slot(id) => slots.iter().find(|slot| slot.id() == *id),
        Token::Label(wanted) => slots.iter().find(|slot| label(slot) == *wanted),
    };
    found.copied().ok_or_else(|| {
        let present: Vec<String> = slots
            .iter()
            .map(|s| format!("{} `{}`", s.id(), label(s)))
            .collect();
        invalid(format!(
            "no initialised token {} in `{}`; present: [{}]",
            match &spec.token {
                Token::Slot(id) => format!("in slot {id}"),
                Token::Label(l) => format!("labelled `{l}`"),
            },
            spec.module.display(),
            present.join(", ")
        ))
    })
}

/// Whether a login may be tried. A smart card counts wrong PINs and locks
/// at the last: with one try left the PIN is not tried (a wrong one would
/// lock the card), and a locked PIN is not tried at all.
fn pin_tries_left(final_try: bool, locked: bool) -> Result<(), ConfigError> {
    let problem = match (locked, final_try) {
        (true, _) => "the token has locked the user PIN; unlock it with the security officer PIN",
        (false, true) => {
            "the token allows one more PIN try: not spent here; check the PIN, then log in \
             once with the token's own tool (which resets the count)"
        }
        (false, false) => return Ok(()),
    };
    Err(ConfigError::new("pkcs11.pin", problem))
}

fn login(session: &Session, spec: &Pkcs11Spec) -> Result<(), ConfigError> {
    let pin = AuthPin::from(spec.pin.expose());
    match session.login(UserType::User, Some(&pin)) {
        // Login state belongs to the application: another session of this
        // process logged in already.
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(P11Error::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        )) => Err(ConfigError::new("pkcs11.pin", "the token refused the PIN")),
        Err(P11Error::Pkcs11(RvError::PinLocked, _)) => Err(ConfigError::new(
            "pkcs11.pin",
            "the token has locked the PIN after too many wrong tries",
        )),
        Err(e) => Err(ConfigError::new("pkcs11.pin", format!("login failed: {e}"))),
    }
}

fn find(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, ConfigError> {
    let objects = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| {
            ConfigError::new(
                "pkcs11.key_label",
                format!("could not search the token: {e}"),
            )
        })?;
    Ok(objects.first().copied())
}

/// The key's kind and public key, read from its public half (same label).
fn public_key(
    session: &Session,
    key: ObjectHandle,
    label: &str,
) -> Result<(Kind, SubjectPublicKeyInfoDer<'static>), ConfigError> {
    let invalid = |problem: String| ConfigError::new("pkcs11.key_label", problem);
    let key_type = session
        .get_attributes(key, &[AttributeType::KeyType])
        .map_err(|e| invalid(format!("could not read the key's type: {e}")))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(kind) => Some(kind),
            _ => None,
        });
    let public = find(session, ObjectClass::PUBLIC_KEY, label)?.ok_or_else(|| {
        invalid(format!(
            "the token holds no public key labelled `{label}` beside the private one"
        ))
    })?;
    let wanted = [
        AttributeType::EcParams,
        AttributeType::EcPoint,
        AttributeType::Modulus,
        AttributeType::PublicExponent,
    ];
    let (mut params, mut point, mut modulus, mut exponent) = (None, None, None, None);
    for attribute in session
        .get_attributes(public, &wanted)
        .map_err(|e| invalid(format!("could not read the public key: {e}")))?
    {
        match attribute {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    match (key_type, params.as_deref(), point, modulus, exponent) {
        (Some(KeyType::EC), Some(P256), Some(point), ..) => {
            let raw = uncompressed_point(&point, 65).ok_or_else(|| invalid("has a malformed EC point".into()))?;
            Ok((Kind::P256, public_key_to_spki(&alg_id::ECDSA_P256, raw)))
        }
        (Some(KeyType::EC), Some(P384), Some(point), ..) => {
            let raw = uncompressed_point(&point, 97).ok_or_else(|| invalid("has a malformed EC point".into()))?;
            Ok((Kind::P384, public_key_to_spki(&alg_id::ECDSA_P384, raw)))
        }
        (Some(KeyType::RSA), _, _, Some(n), Some(e)) => Ok((
            Kind::Rsa,
            public_key_to_spki(&alg_id::RSA_ENCRYPTION, rsa_public_key_der(&n, &e)),
        )),
        _ => Err(invalid(
            "is neither an ECDSA P-256/P-384 key nor an RSA key; those are the kinds TLS can use here".into(),
        )),
    }
}

/// The uncompressed point `04 || X || Y` of length `len`, bare or wrapped in
/// a DER OCTET STRING (as SoftHSM returns it).
fn uncompressed_point(point: &[u8], len: usize) -> Option<&[u8]> {
    match point {
        [0x04, ..] if point.len() == len => Some(point),
        [0x04, n, rest @ ..] if usize::from(*n) == len && rest.len() == len && rest[0] == 0x04 => {
            Some(rest)
        }
        _ => None,
    }
}

impl SigningKey for Pkcs11Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let preferred: &[SignatureScheme] = match self.kind {
            Kind::P256 => &[SignatureScheme::ECDSA_NISTP256_SHA256],
            Kind::P384 => &[SignatureScheme::ECDSA_NISTP384_SHA384],
            Kind::Rsa => &[
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::RSA_PSS_SHA384,
                SignatureScheme::RSA_PSS_SHA512,
                SignatureScheme::RSA_PKCS1_SHA256,
                SignatureScheme::RSA_PKCS1_SHA384,
                SignatureScheme::RSA_PKCS1_SHA512,
            ],
        };
        let scheme = *preferred.iter().find(|scheme| offered.contains(scheme))?;
        Some(Box::new(Pkcs11Signer {
            token: self.token.clone(),
            scheme,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(self.spki.clone())
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            Kind::Rsa => SignatureAlgorithm::RSA,
            Kind::P256 | Kind::P384 => SignatureAlgorithm::ECDSA,
        }
    }
}

#[derive(Debug)]
struct Pkcs11Signer {
    token: Arc<OpenKey>,
    scheme: SignatureScheme,
}

impl Signer for Pkcs11Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let session = self
            .token
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = self.token.key;
        let pss = |hash_alg, mgf, salt: u64| PkcsPssParams {
            hash_alg,
            mgf,
            s_len: salt.into(),
        };
        let ecdsa = |algorithm| {
            let hash = digest::digest(algorithm, message);
            session
                .sign(&Mechanism::Ecdsa, key, hash.as_ref())
                .map(|rs| ecdsa_signature_der(&rs))
        };
        let signature = match self.scheme {
            SignatureScheme::ECDSA_NISTP256_SHA256 => ecdsa(&digest::SHA256),
            SignatureScheme::ECDSA_NISTP384_SHA384 => ecdsa(&digest::SHA384),
            SignatureScheme::RSA_PSS_SHA256 => session.sign(
                &Mechanism::Sha256RsaPkcsPss(pss(
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                    32,
                )),
                key,
                message,
            ),
            SignatureScheme::RSA_PSS_SHA384 => session.sign(
                &Mechanism::Sha384RsaPkcsPss(pss(
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                    48,
                )),
                key,
                message,
            ),
            SignatureScheme::RSA_PSS_SHA512 => session.sign(
                &Mechanism::Sha512RsaPkcsPss(pss(
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                    64,
                )),
                key,
                message,
            ),
            SignatureScheme::RSA_PKCS1_SHA256 => {
                session.sign(&Mechanism::Sha256RsaPkcs, key, message)
            }
            SignatureScheme::RSA_PKCS1_SHA384 => {
                session.sign(&Mechanism::Sha384RsaPkcs, key, message)
            }
            SignatureScheme::RSA_PKCS1_SHA512 => {
                session.sign(&Mechanism::Sha512RsaPkcs, key, message)
            }
            other => {
                return Err(rustls::Error::General(format!(
                    "the PKCS#11 key cannot sign with {other:?}"
                )));
            }
        };
        signature
            .map_err(|e| rustls::Error::General(format!("the PKCS#11 token failed to sign: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// `SEQUENCE { INTEGER r, INTEGER s }` from a token's raw `r || s`.
fn ecdsa_signature_der(rs: &[u8]) -> Vec<u8> {
    let (r, s) = rs.split_at(rs.len() / 2);
    let mut content = Vec::with_capacity(rs.len() + 8);
    der_unsigned(r, &mut content);
    der_unsigned(s, &mut content);
    der_sequence(&content)
}

/// `RSAPublicKey ::= SEQUENCE { INTEGER n, INTEGER e }`.
fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(modulus.len() + exponent.len() + 8);
    der_unsigned(modulus, &mut content);
    der_unsigned(exponent, &mut content);
    der_sequence(&content)
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        // Short form: the length fits in seven bits.
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        // At most eight length bytes: the high bit marks the long form.
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}

/// An unsigned big-endian number as a DER INTEGER: leading zeros dropped, a
/// zero byte added when the high bit would make it negative.
fn der_unsigned(mut value: &[u8], out: &mut Vec<u8>) {
    while let [0, rest @ ..] = value
        && !rest.is_empty()
    {
        value = rest;
    }
    let value = if value.is_empty() { &[0][..] } else { value };
    let pad = value[0] & 0x80 != 0;
    out.push(0x02);
    der_length(value.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    der_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der() {
        // r with its high bit set gets a zero byte; s's leading zeros go.
        let mut rs = vec![0x80; 32];
        rs.extend(std::iter::repeat_n(0, 31));
        rs.push(0x05);
        let der = ecdsa_signature_der(&rs);
        assert_eq!(&der[..4], &[0x30, 38, 0x02, 33]);
        assert_eq!(der[4], 0);
        assert_eq!(&der[37..], &[0x02, 1, 0x05]);
    }

    #[test]
    fn the_last_pin_try_and_a_locked_pin_are_not_spent() {
        assert!(pin_tries_left(false, false).is_ok());
        let last = pin_tries_left(true, false).expect_err("one try left");
        assert_eq!(last.field(), "pkcs11.pin");
        assert!(last.to_string().contains("one more PIN try"), "{last}");
        let locked = pin_tries_left(true, true).expect_err("locked");
        assert!(locked.to_string().contains("locked"), "{locked}");
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let mut out = Vec::new();
        der_length(300, &mut out);
        assert_eq!(out, [0x82, 0x01, 0x2C]);
        let key = rsa_public_key_der(&[0xC0; 256], &[1, 0, 1]);
        assert_eq!(&key[..4], &[0x30, 0x82, 0x01, 0x0A]);
    }

    #[test]
    fn ec_points_are_read_bare_or_wrapped() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        assert_eq!(uncompressed_point(&bare, 65), Some(&bare[..]));
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&bare);
        assert_eq!(uncompressed_point(&wrapped, 65), Some(&bare[..]));
        assert_eq!(uncompressed_point(&bare[1..], 65), None);
    }
}
