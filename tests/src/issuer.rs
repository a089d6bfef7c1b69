//! The credentials a loopback endpoint hands out: numbered keys
//! (`ASIA<prefix>00000001`, ...) that live a set time, and the log of
//! what was issued when.

use std::sync::Mutex;
use std::time::Duration;

use refresh_session_core::{Credentials, Secret};
use time::OffsetDateTime;

/// A credential an endpoint issued.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    /// Its access key id.
    pub access_key_id: String,
    /// When it was issued (server clock).
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// Issues numbered credentials.
#[derive(Debug)]
pub struct Issuer {
    prefix: &'static str,
    lifetime: Duration,
    issued: Mutex<Vec<IssuedCredential>>,
}

impl Issuer {
    /// Keys named `ASIA<prefix><n>` that live `lifetime`.
    pub fn new(prefix: &'static str, lifetime: Duration) -> Self {
        Self {
            prefix,
            lifetime,
            issued: Mutex::default(),
        }
    }

    /// The next credential: secret `<prefix>-secret-<n>`, token
    /// `<prefix>-token-<n>`.
    pub fn issue(&self, now: OffsetDateTime) -> Credentials {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let n = issued.len() + 1;
        let access_key_id = format!("ASIA{}{n:08}", self.prefix);
        let expires_at = now + self.lifetime;
        issued.push(IssuedCredential {
            access_key_id: access_key_id.clone(),
            issued_at: now,
            expires_at,
        });
        let prefix = self.prefix.to_lowercase();
        Credentials::new(
            access_key_id,
            Secret::new(format!("{prefix}-secret-{n}")),
            Some(Secret::new(format!("{prefix}-token-{n}"))),
            Some(expires_at),
        )
    }

    /// Everything issued, in order.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
