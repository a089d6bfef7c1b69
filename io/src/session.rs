//! What every adapter's `RefreshableSession` is made of: a cheap handle on
//! the session's [`Driver`] (and an IoT session's TLS identity) whose last
//! clone closes the driver, and what a session does without waiting: take
//! a rejection, read metrics, build a `whoami` request, sign. The adapters
//! add what waits (credentials, sending), in their own color.

use std::fmt;
use std::sync::Arc;

use refresh_session_core::engine::{Engine, Metrics};
use refresh_session_core::fingerprint::Fingerprint;
use refresh_session_core::mqtt::{Mqtt, MqttPlan};
use refresh_session_core::rejection::Rejection;
use refresh_session_core::resolved::ResolvedSession;
use refresh_session_core::sign::sign_request;
use refresh_session_core::sts;
use refresh_session_core::{ConfigError, Credentials, Error};

use crate::tls::DeviceTls;
use crate::{Backend, Driver};

/// A session's shared state; clones share one cache and one refresh.
pub struct SessionHandle<B: Backend> {
    held: Arc<Held<B>>,
}

/// Dropped with the last clone: the worker stops.
struct Held<B: Backend> {
    driver: Arc<Driver<B>>,
    session: ResolvedSession,
    device: Option<DeviceTls>,
}

impl<B: Backend> Drop for Held<B> {
    fn drop(&mut self) {
        self.driver.close();
    }
}

impl<B: Backend> Clone for SessionHandle<B> {
    fn clone(&self) -> Self {
        Self {
            held: Arc::clone(&self.held),
        }
    }
}

impl<B: Backend> SessionHandle<B> {
    /// A handle on `driver`, for the `session` its engine was built with;
    /// `device` is an IoT session's TLS identity, opened.
    pub fn new(
        driver: Arc<Driver<B>>,
        session: ResolvedSession,
        device: Option<DeviceTls>,
    ) -> Self {
        Self {
            held: Arc::new(Held {
                driver,
                session,
                device,
            }),
        }
    }

    /// The session's driver.
    #[inline(always)]
    pub fn driver(&self) -> &Arc<Driver<B>> {
        &self.held.driver
    }

    /// An IoT session's TLS identity, for MQTT connections.
    pub fn device(&self) -> Option<&DeviceTls> {
        self.held.device.as_ref()
    }

    /// A service refused `access_key_id`; see
    /// [`Engine::credentials_rejected`].
    pub fn credentials_rejected(&self, access_key_id: &str, rejection: Rejection) -> bool {
        self.driver().rejected(access_key_id, rejection)
    }

    /// Refresh counters and the current expiry.
    pub fn metrics(&self) -> Metrics {
        self.driver().engine(Engine::metrics)
    }

    /// What the session was resolved from; see
    /// [`ResolvedSession::fingerprint`].
    pub fn fingerprint(&self) -> Fingerprint {
        self.held.session.fingerprint()
    }

    /// STS `GetCallerIdentity` signed with `credentials` at AWS's time.
    pub fn caller_identity_request(
        &self,
        credentials: &Credentials,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        let endpoint = self.held.session.sts_endpoint()?;
        sts::caller_identity_request(endpoint, credentials, self.driver().aws_now())
    }

    /// Signs `request` for `service` in `region` with `credentials` at
    /// AWS's time.
    pub fn sign<T: AsRef<[u8]>>(
        &self,
        request: &mut http::Request<T>,
        credentials: &Credentials,
        region: &str,
        service: &str,
    ) -> Result<(), Error> {
        sign_request(
            request,
            credentials,
            region,
            service,
            self.driver().aws_now(),
        )
    }

    /// Checks MQTT `options` against the session (see
    /// [`ResolvedSession::mqtt`]).
    pub fn mqtt_plan(&self, options: Mqtt) -> Result<MqttPlan, ConfigError> {
        self.held.session.mqtt(options)
    }

    /// A WebSocket URL for `plan` presigned with `credentials` at AWS's
    /// time.
    pub fn websocket_url(
        &self,
        plan: &MqttPlan,
        credentials: &Credentials,
    ) -> Result<String, Error> {
        plan.websocket_url(credentials, self.driver().aws_now())
    }
}

impl<B: Backend> fmt::Debug for SessionHandle<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshableSession")
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}
