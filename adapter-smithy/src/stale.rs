//! Retrying SDK requests whose credentials a service rejected as stale.
//!
//! A credential can die before its expiry as the session knows it (a
//! revoked session, a clock that lies); the service then answers
//! `ExpiredToken`, `ExpiredTokenException` or `RequestExpired`, or
//! `InvalidClientTokenId` for a key replaced since the request was signed.
//! [`StaleCredentials`] is both the interceptor that tells the session (which
//! drops the rejected credential and refreshes, once for any number of such
//! answers) and the retry classifier that lets the SDK retry the request,
//! which is then signed with the refreshed credential.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut, InterceptorContext,
};
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use refresh_session_core::rejection::{Rejection, signer_access_key_id};
use refresh_session_tokio::RefreshableSession;

/// Marks an attempt's response for [`StaleCredentials`]'s retry
/// classifier, which sees the response but not the config bag. It never
/// leaves the process.
const RETRY_MARK: &str = "x-refresh-session-retry";

/// The interceptor and retry classifier for one session; add it to a
/// service config as both:
///
/// ```ignore
/// let stale = provider.stale_credentials();
/// let s3 = aws_sdk_s3::config::Builder::from(&config)
///     .interceptor(stale.clone())
///     .retry_classifier(stale)
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct StaleCredentials {
    session: RefreshableSession,
}

/// The access key the attempt was signed with.
#[derive(Debug, Clone)]
struct SignedWith(String);

impl Storable for SignedWith {
    type Storer = StoreReplace<Self>;
}

impl StaleCredentials {
    /// Retries for `session`'s credentials.
    pub fn new(session: RefreshableSession) -> Self {
        Self { session }
    }
}

impl Intercept for StaleCredentials {
    fn name(&self) -> &'static str {
        "refresh-session stale credentials"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let signer = context
            .request()
            .headers()
            .get("authorization")
            .and_then(signer_access_key_id);
        if let Some(key) = signer {
            cfg.interceptor_state()
                .store_put(SignedWith(key.to_owned()));
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(SignedWith(key)) = cfg.load::<SignedWith>() else {
            return Ok(());
        };
        let Some(response) = context.response_mut() else {
            return Ok(());
        };
        let rejection = Rejection::from_response(
            response.status().as_u16(),
            response.headers().get("x-amzn-errortype"),
            response.body().bytes().unwrap_or_default(),
        );
        if let Some(rejection) = rejection
            && self.session.credentials_rejected(key, rejection)
        {
            response
                .headers_mut()
                .insert(RETRY_MARK, "stale-credentials");
        }
        Ok(())
    }
}

impl ClassifyRetry for StaleCredentials {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(response) if response.headers().contains_key(RETRY_MARK) => {
                RetryAction::transient_error()
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "refresh-session stale credentials"
    }
}
