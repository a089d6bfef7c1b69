//! refresh-session for the AWS SDK for Rust: a [`RefreshableSession`]
//! as the SDK's credentials provider, its STS calls made the SDK's way,
//! retries of requests whose credentials went stale, and a [`ClientCache`]
//! of SDK clients.
//!
//! The session keeps its credential fresh (refreshing in the background,
//! single flight, never handing out an expired one), so the SDK's own
//! identity cache adds nothing but a second expiry rule: turn it off with
//! `IdentityCache::no_cache()`.
//!
//! ```no_run
//! use aws_types::SdkConfig;
//! use refresh_session_smithy::{ClientCache, SessionCredentialsProvider};
//! use refresh_session_tokio::prelude::*;
//!
//! # async fn run(base: SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
//! // `base` as `aws_config::load_defaults(..)` gives it: its credentials
//! // sign the AssumeRole calls, its HTTP client sends them.
//! let session = refresh_session_smithy::assume_role(
//!     &base,
//!     AssumeRole::new("arn:aws:iam::123456789012:role/app"),
//! )?
//! .defer_refresh(false)
//! .build()
//! .await?;
//! let provider = SessionCredentialsProvider::new(session);
//! let stale = provider.stale_credentials();
//! let config = base
//!     .into_builder()
//!     .credentials_provider(provider.shared())
//!     // .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
//!     .build();
//! let clients = ClientCache::default();
//! // let s3 = clients.get(&config, |config| {
//! //     aws_sdk_s3::Client::from_conf(
//! //         aws_sdk_s3::config::Builder::from(config)
//! //             .interceptor(stale.clone())
//! //             .retry_classifier(stale.clone())
//! //             .build(),
//! //     )
//! // });
//! # drop((config, clients, stale));
//! # Ok(()) }
//! ```

mod assume_role;
mod client_cache;
mod provider;
mod runtime;
mod stale;
mod transport;

pub use assume_role::assume_role;
pub use client_cache::{ClientCache, Eviction};
pub use provider::SessionCredentialsProvider;
pub use refresh_session_tokio::RefreshableSession;
pub use stale::StaleCredentials;
pub use transport::SdkHttpTransport;
