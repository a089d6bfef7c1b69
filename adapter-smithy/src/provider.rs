//! A session as the AWS SDK's credentials provider.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials as SdkCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use refresh_session_tokio::{Credentials, RefreshableSession};

use crate::stale::StaleCredentials;

/// A [`RefreshableSession`] that AWS SDK clients ask for credentials.
///
/// While the session's credential is fresh the answer is ready at once
/// (`ProvideCredentials::ready`, nothing boxed, nothing awaited); otherwise
/// it is the session's own refresh, single-flight across every client
/// sharing the provider. The session caches: give the SDK
/// `IdentityCache::no_cache()` so that two caches do not stack (see the
/// crate docs).
#[derive(Debug, Clone)]
pub struct SessionCredentialsProvider {
    session: RefreshableSession,
    /// The last credential handed out, converted once: a hit loads and
    /// clones an `Arc`, without a lock and without copying the secret again.
    converted: Arc<ArcSwapOption<(Arc<Credentials>, SdkCredentials)>>,
}

impl SessionCredentialsProvider {
    /// A provider backed by `session`.
    pub fn new(session: RefreshableSession) -> Self {
        Self {
            session,
            converted: Arc::default(),
        }
    }

    /// The provider as `SdkConfig` and service configs take it.
    pub fn shared(self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(self)
    }

    /// The interceptor and retry classifier that retry requests whose
    /// credentials a service rejected as stale, with refreshed ones (see
    /// [`StaleCredentials`]).
    pub fn stale_credentials(&self) -> StaleCredentials {
        StaleCredentials::new(self.session.clone())
    }

    /// The session behind the provider.
    pub fn session(&self) -> &RefreshableSession {
        &self.session
    }

    fn to_sdk(&self, credentials: Arc<Credentials>) -> SdkCredentials {
        // Compared by key and expiry, not by pointer: threads get their own
        // copies of one credential.
        if let Some(last) = &*self.converted.load()
            && last.0.access_key_id() == credentials.access_key_id()
            && last.0.expiration() == credentials.expiration()
        {
            return last.1.clone();
        }
        let sdk = credentials.to_sdk();
        self.converted
            .store(Some(Arc::new((credentials, sdk.clone()))));
        sdk
    }
}

impl ProvideCredentials for SessionCredentialsProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        if let Some(credentials) = self.session.fresh_credentials() {
            return provider::future::ProvideCredentials::ready(Ok(self.to_sdk(credentials)));
        }
        provider::future::ProvideCredentials::new(async move {
            match self.session.credentials().await {
                Ok(credentials) => Ok(self.to_sdk(credentials)),
                // The session's errors never hold a secret.
                Err(error) => Err(CredentialsError::provider_error(error)),
            }
        })
    }
}
