//! Async AWS credentials that never make a request wait: a
//! `RefreshableSession` for services on tokio, or on any executor.
//!
//! A session gets credentials from STS `AssumeRole` (optionally with MFA) or
//! from your own provider, caches them, and refreshes them before they
//! expire, in a task of its own. It drives the sans-IO
//! [`refresh_session_core`] engine, the same one the blocking adapter
//! drives.
//!
//! # Refresh semantics
//!
//! With a credential that expires at `E`, an advisory timeout `A` and a
//! mandatory timeout `M` (by default, as the AWS SDKs from 2026: `A` 5, 15
//! or 60 minutes by the credential's lifetime, `M` 60 s; at most half the
//! lifetime):
//!
//! - before `E - A`, [`credentials`](RefreshableSession::credentials)
//!   completes at once, without a lock or an await;
//! - from `E - A`, it still completes at once, and one refresh starts in a
//!   background task; a failed one keeps the cache and backs off;
//! - from `E - M`, callers wait for the single refresh in flight; if it
//!   fails in a way trying again may fix, they get the cached credential
//!   while it is valid, else its error, and a failed refresh is retried
//!   after a backoff, never by every caller (see docs/refresh-semantics.md); a caller that
//!   gives up (a dropped future, a timeout) does not cancel the refresh the
//!   others wait for;
//! - whatever goes wrong in a refresh (a panic in a provider or transport,
//!   a runtime without timers or shut down), every waiting task gets a
//!   typed error;
//! - with `defer_refresh(false)` the session fetches when built and one
//!   background task refreshes before `E - A`, so callers never wait. The
//!   task ends when the last clone of the session drops.
//!
//! # Example
//!
//! ```
//! use refresh_session_tokio::prelude::*;
//! use time::OffsetDateTime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), refresh_session_tokio::Error> {
//! let session = RefreshableSession::custom(|| async {
//!     // Fetch from a vault, a broker, an HTTP endpoint...
//!     let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
//!     Ok(CustomCredentials::new()
//!         .access_key_id("ASIAEXAMPLE")
//!         .secret_access_key("secret")
//!         .session_token("token")
//!         .expiration(expires))
//! })
//! .defer_refresh(false)
//! .build()
//! .await?;
//!
//! let credentials = session.credentials().await?;
//! assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
//! # Ok(())
//! # }
//! ```
//!
//! # Other executors
//!
//! The session uses its executor only through [`Runtime`] (spawn a task,
//! run blocking code, sleep) and sends requests through [`HttpTransport`].
//! They default to tokio (feature `tokio-runtime`) and reqwest (feature
//! `reqwest`, which implies `tokio-runtime`; on by default); set
//! [`Builder::runtime`] and [`Builder::transport`] to run elsewhere.

mod driver;
mod fleet;
mod hooks;
mod runtime;
mod session;
mod transport;

pub use fleet::{FleetBuilder, SessionFleet};
pub use hooks::BoxError;
pub use refresh_session_core::custom::CustomCredentials;
pub use refresh_session_core::engine::Metrics;
pub use refresh_session_core::fleet::{FleetKey, FleetOptions};
pub use refresh_session_core::iot::{Iot, Pkcs11, TlsIdentity};
#[cfg(feature = "mqtt")]
pub use refresh_session_core::mqtt::Mqtt;
pub use refresh_session_core::rejection::Rejection;
pub use refresh_session_core::sts::{AssumeRole, CallerIdentity, GetSessionToken};
pub use refresh_session_core::{ConfigError, Credentials, Error, Secret, SessionOptions, error};
/// The MQTT client crate [`RefreshableSession::mqtt`] returns clients of.
#[cfg(feature = "mqtt")]
pub use rumqttc;
#[cfg(feature = "tokio-runtime")]
pub use runtime::TokioRuntime;
pub use runtime::{BoxFuture, Runtime};
pub use session::{Builder, RefreshableSession};
pub use transport::HttpTransport;
#[cfg(feature = "reqwest")]
pub use transport::ReqwestTransport;

/// Everything a session needs, in one import.
pub mod prelude {
    #[cfg(feature = "mqtt")]
    pub use crate::Mqtt;
    pub use crate::{
        AssumeRole, Credentials, CustomCredentials, FleetOptions, GetSessionToken, Iot, Pkcs11,
        RefreshableSession, SessionOptions,
    };
}
