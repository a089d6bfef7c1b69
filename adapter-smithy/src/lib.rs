//! refresh-session for the AWS SDK for Rust: a [`RefreshableSession`]
//! as the SDK's credentials provider, and a [`ClientCache`] of SDK
//! clients.
//!
//! The session keeps its credential fresh (refreshing in the background,
//! single flight, never handing out an expired one), so the SDK's own
//! identity cache adds nothing but a second expiry rule: turn it off with
//! `IdentityCache::no_cache()`.
//!
//! ```no_run
//! use aws_types::SdkConfig;
//! use aws_types::region::Region;
//! use refresh_session_smithy::{ClientCache, SessionCredentialsProvider};
//! use refresh_session_tokio::prelude::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let session = RefreshableSession::sts(AssumeRole::new("arn:aws:iam::123456789012:role/app"))
//!     .region("eu-west-1")
//!     .defer_refresh(false)
//!     .build()
//!     .await?;
//! let config = SdkConfig::builder()
//!     .region(Region::new("eu-west-1"))
//!     .credentials_provider(SessionCredentialsProvider::new(session).shared())
//!     // .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
//!     // .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
//!     .build();
//! let clients = ClientCache::default();
//! // let s3 = clients.get(&config, aws_sdk_s3::Client::new);
//! # drop((config, clients));
//! # Ok(()) }
//! ```

mod client_cache;
mod provider;

pub use client_cache::{ClientCache, Eviction};
pub use provider::SessionCredentialsProvider;
pub use refresh_session_tokio::RefreshableSession;
