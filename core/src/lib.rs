//! The sans-IO engine of refresh-session: AWS temporary credentials that
//! never go stale.
//!
//! This crate does no IO. It reads no clock, opens no socket or file, starts
//! no thread or process. Time comes in as `now`, randomness as a seed, and
//! the [`Engine`](engine::Engine) says what it needs (send this signed STS
//! request, send this request over the device's TLS identity, ask for an MFA
//! code, call the custom provider, wake me at this time) and is told the
//! answers. That makes every decision reproducible, testable over a
//! simulated clock, and shared by every adapter:
//! `refresh-session-blocking` (threads and `ureq`) and the async adapters
//! drive this same engine.
//!
//! # Example: driving the engine by hand
//!
//! ```
//! use refresh_session_core::custom::CustomCredentials;
//! use refresh_session_core::engine::{Access, Engine, Event, Input, Request};
//! use refresh_session_core::SessionConfig;
//! use time::macros::datetime;
//!
//! let now = datetime!(2030-01-01 0:00 UTC);
//! let no_env = |_: &str| None;
//! let (mut engine, _session) = Engine::new(SessionConfig::custom(), &no_env, now, 42)?;
//!
//! // No credential yet: the caller has to wait for a fetch.
//! let Access::Pending(fetch) = engine.poll_access(now, None) else {
//!     unreachable!("a new session has nothing cached");
//! };
//!
//! // The driver performs what the engine asks for.
//! while let Some(request) = engine.poll_request() {
//!     match request {
//!         Request::CallProvider { fetch } => {
//!             let result = CustomCredentials::new()
//!                 .access_key_id("ASIAEXAMPLE")
//!                 .secret_access_key("secret")
//!                 .session_token("token")
//!                 .expiration_rfc3339("2030-01-01T01:00:00Z");
//!             engine.handle_input(now, Input::Provided { fetch, result: Ok(result) });
//!         }
//!         other => unreachable!("a custom session asks for nothing else: {other:?}"),
//!     }
//!     // A driver hands out what it publishes and wakes the waiters here.
//!     while let Some(event) = engine.poll_event() {
//!         assert!(matches!(event, Event::Publish(Some(_)) | Event::Finished { .. }));
//!     }
//! }
//!
//! let Access::Ready(credentials) = engine.poll_access(now, Some(fetch)) else {
//!     unreachable!("the fetch succeeded");
//! };
//! assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
//! assert_eq!(engine.metrics().refreshes, 1);
//! # Ok::<(), refresh_session_core::ConfigError>(())
//! ```
//!
//! # Modules
//!
//! - [`engine`]: the event loop; [`policy`]: when to refresh;
//! - [`sts`]: `AssumeRole` and `GetCallerIdentity`; [`sign`]: SigV4;
//! - [`iot`]: AWS IoT Core's credential provider; [`mqtt`]: MQTT
//!   connections over a session's identity;
//! - [`mfa`], [`custom`], [`source`]: MFA codes, custom providers, and the
//!   credentials that sign STS calls;
//! - [`fleet`]: many sessions by role, their limits and idle members;
//!   [`pace`]: spacing a fleet's STS calls;
//! - [`config`]: what a session is built from; [`error`]: what can fail.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
pub mod chain;
pub mod command;
pub mod config;
pub mod credentials;
pub mod custom;
pub mod device_login;
pub mod engine;
pub mod error;
mod fetch;
pub mod fingerprint;
pub mod fleet;
#[cfg(feature = "harness")]
pub mod harness;
pub mod hex;
pub mod iot;
mod json;
pub mod mfa;
pub mod mqtt;
pub mod oidc;
pub mod pace;
pub mod policy;
pub mod profile;
mod query;
pub mod rejection;
pub mod resolved;
pub mod retry;
mod saturating;
pub mod secret;
pub mod sign;
mod skew;
pub mod source;
pub mod sso_token;
pub mod sts;
mod validate;
mod xml;

pub use config::{Clock, SessionConfig, SessionOptions};
pub use credentials::Credentials;
pub use error::{ConfigError, Error};
pub use secret::Secret;
