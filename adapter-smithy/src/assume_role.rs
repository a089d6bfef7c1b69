//! A session whose STS calls go the way the SDK's own calls go: signed
//! with the `SdkConfig`'s credentials provider (the default chain, with
//! profiles, SSO and IMDS, when the config comes from `aws_config`), sent
//! to its region and endpoint through its HTTP client, timed by its sleep,
//! time source and timeouts.

use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::SdkConfig;
use refresh_session_core::config::HttpTimeouts;
use refresh_session_tokio::{
    AssumeRole, Builder, ConfigError, Credentials, RefreshableSession, SessionOptions, TokioRuntime,
};

use crate::runtime::{SdkClock, SdkRuntime};
use crate::transport::SdkHttpTransport;

/// A [`RefreshableSession`] builder for `role`, set up from `config`:
///
/// - source credentials: `config`'s credentials provider, asked on every
///   refresh (without one, the session's own default chain);
/// - region and endpoint URL: `config`'s, where set;
/// - HTTP: `config`'s HTTP client (without one, the session's own), with
///   `config`'s connect and read timeouts where set (else 3 s and 10 s);
/// - sleep and clock: `config`'s sleep and time source, where set; tasks
///   run on the tokio runtime this is called in.
///
/// The builder's own setters still apply after this one. Fails only if
/// the SDK's HTTP client cannot be set up.
pub fn assume_role(config: &SdkConfig, role: AssumeRole) -> Result<Builder, ConfigError> {
    let mut builder = RefreshableSession::sts(role);
    if let Some(region) = config.region() {
        builder = builder.region(region.as_ref());
    }
    if let Some(url) = config.endpoint_url() {
        builder = builder.endpoint_url(url);
    }
    if let Some(provider) = config.credentials_provider() {
        builder = builder.source_provider(move || {
            let provider = provider.clone();
            async move {
                match provider.provide_credentials().await {
                    Ok(credentials) => Ok(Credentials::from(&credentials)),
                    Err(error) => Err(DisplayErrorContext(&error).to_string().into()),
                }
            }
        });
    }
    let timeouts = timeouts(config);
    builder = builder
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read);
    if let Some(client) = config.http_client() {
        builder = builder.transport(SdkHttpTransport::new(client, config, timeouts)?);
    }
    if let (Some(sleep), Some(tokio)) = (config.sleep_impl(), TokioRuntime::current()) {
        builder = builder.runtime(SdkRuntime::new(tokio, sleep));
    }
    if let Some(time_source) = config.time_source() {
        builder = builder.clock(SdkClock(time_source));
    }
    Ok(builder)
}

fn timeouts(config: &SdkConfig) -> HttpTimeouts {
    let defaults = HttpTimeouts::default();
    let set = config.timeout_config();
    HttpTimeouts {
        connect: set
            .and_then(|t| t.connect_timeout())
            .unwrap_or(defaults.connect),
        read: set.and_then(|t| t.read_timeout()).unwrap_or(defaults.read),
    }
}
