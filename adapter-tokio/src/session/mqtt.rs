//! MQTT over the session's identity (feature `mqtt`).

use std::sync::Arc;

use refresh_session_core::mqtt::{Mqtt, MqttPlan};
use refresh_session_core::{ConfigError, Error};
use refresh_session_io::mqtt::{Presign, REQUEST_CAPACITY};

use super::RefreshableSession;
use crate::hooks::blocking;

impl RefreshableSession {
    /// An MQTT client and its event loop for `options`' broker over this
    /// session's identity: mutual TLS with the IoT session's certificate
    /// and key (the same key, a PKCS#11 session included, not opened
    /// again), or a WebSocket presigned with the session's credentials on
    /// every (re)connect. Poll the event loop to drive it; after an error,
    /// polling again reconnects.
    pub async fn mqtt(
        &self,
        options: Mqtt,
    ) -> Result<(rumqttc::AsyncClient, rumqttc::EventLoop), Error> {
        let plan = self.handle.mqtt_plan(options)?;
        let presign: Presign = {
            let session = self.clone();
            let plan = Arc::new(plan.clone());
            Arc::new(move || {
                let (session, plan) = (session.clone(), plan.clone());
                Box::pin(async move { session.websocket_url(&plan).await })
            })
        };
        let device = self.handle.device().cloned();
        // Own keys are read from files or opened in a token.
        let options = blocking(
            "MQTT options",
            &*self.handle.driver().backend().runtime,
            move || {
                Ok(refresh_session_io::mqtt::options(
                    &plan,
                    device.as_ref(),
                    presign,
                ))
            },
        )
        .await
        .map_err(|e| ConfigError::new("certificate", e.to_string()))??;
        Ok(rumqttc::AsyncClient::new(options, REQUEST_CAPACITY))
    }

    async fn websocket_url(&self, plan: &MqttPlan) -> Result<String, Error> {
        let credentials = self.credentials().await?;
        self.handle.websocket_url(plan, &credentials)
    }
}
