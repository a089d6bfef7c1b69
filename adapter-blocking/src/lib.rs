//! Blocking AWS credentials that never go stale: a `RefreshableSession` for
//! CLI tools and synchronous services.
//!
//! A session gets credentials from STS `AssumeRole` (optionally with MFA) or
//! from your own provider, caches them, and refreshes them before they
//! expire. It is a thin driver around the sans-IO
//! [`refresh_session_core`] engine: threads, `ureq` with rustls, and the
//! closures you hand it.
//!
//! # Refresh semantics
//!
//! With a credential that expires at `E`, an advisory timeout `A` and a
//! mandatory timeout `M` (by default, as the AWS SDKs from 2026: `A` 5, 15
//! or 60 minutes by the credential's lifetime, `M` 60 s; at most half the
//! lifetime):
//!
//! - before `E - A`, [`credentials`](RefreshableSession::credentials)
//!   returns the cached credential without taking a lock;
//! - from `E - A`, it still returns at once, and one background refresh
//!   starts; a failed one keeps the cache and backs off;
//! - from `E - M`, callers wait for the single refresh in flight; if it
//!   fails in a way trying again may fix, they get the cached credential
//!   while it is valid, else its error; an expired credential is never
//!   returned (unless `serve_expired_on_failure`), and a failed refresh is
//!   retried after a backoff, never by every caller (see docs/refresh-semantics.md);
//! - whatever goes wrong in a refresh (a panic in a provider, a thread that
//!   cannot start), every waiting caller gets a typed error;
//! - with `defer_refresh(false)` the session fetches when built and
//!   refreshes on a background thread before `E - A`, so callers never
//!   wait. The thread stops when the last clone of the session drops.
//!
//! # Example: a custom provider
//!
//! ```
//! use refresh_session_blocking::prelude::*;
//! use time::OffsetDateTime;
//!
//! let session = RefreshableSession::custom(|| {
//!     // Fetch from a vault, a broker, a file...
//!     let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
//!     Ok(CustomCredentials::new()
//!         .access_key_id("ASIAEXAMPLE")
//!         .secret_access_key("secret")
//!         .session_token("token")
//!         .expiration(expires))
//! })
//! .build()?;
//!
//! let credentials = session.credentials()?;
//! assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
//! # Ok::<(), refresh_session_blocking::Error>(())
//! ```
//!
//! # Example: assume a role with MFA
//!
//! ```no_run
//! use std::time::Duration;
//! use refresh_session_blocking::prelude::*;
//!
//! let session = RefreshableSession::sts(
//!     AssumeRole::new("arn:aws:iam::123456789012:role/deploy")
//!         .role_session_name("deploy")
//!         .duration(Duration::from_secs(3600))
//!         .serial_number("arn:aws:iam::123456789012:mfa/alice"),
//! )
//! .region("eu-west-1")
//! .mfa_command(["ykman", "oath", "accounts", "code", "--single", "aws"])
//! .build()?; // source credentials: the default chain (environment, profile, ...)
//!
//! println!("{}", session.whoami()?.arn);
//! # Ok::<(), refresh_session_blocking::Error>(())
//! ```

mod driver;
mod fleet;
mod hooks;
mod mtls;
mod session;
mod sso;
mod transport;

pub use fleet::{FleetBuilder, SessionFleet};
pub use hooks::BoxError;
pub use refresh_session_core::custom::CustomCredentials;
pub use refresh_session_core::engine::Metrics;
pub use refresh_session_core::fleet::{FleetKey, FleetOptions};
pub use refresh_session_core::iot::{Iot, Pkcs11};
#[cfg(feature = "mqtt")]
pub use refresh_session_core::mqtt::Mqtt;
pub use refresh_session_core::rejection::Rejection;
pub use refresh_session_core::sts::{AssumeRole, CallerIdentity, GetSessionToken};
pub use refresh_session_core::{ConfigError, Credentials, Error, Secret, SessionOptions, error};
/// The MQTT client crate [`RefreshableSession::mqtt`] returns clients of.
#[cfg(feature = "mqtt")]
pub use rumqttc;
pub use session::{Builder, RefreshableSession};
pub use sso::{LoginEvent, sso_login};

/// Everything a session needs, in one import.
pub mod prelude {
    #[cfg(feature = "mqtt")]
    pub use crate::Mqtt;
    pub use crate::{
        AssumeRole, Credentials, CustomCredentials, FleetOptions, GetSessionToken, Iot, Pkcs11,
        RefreshableSession, SessionOptions,
    };
}
