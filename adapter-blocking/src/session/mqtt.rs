//! MQTT over the session's identity (feature `mqtt`).

use std::future;
use std::sync::Arc;

use refresh_session_core::Error;
use refresh_session_core::mqtt::{Mqtt, MqttPlan};
use refresh_session_io::mqtt::{Presign, REQUEST_CAPACITY};

use super::RefreshableSession;

impl RefreshableSession {
    /// An MQTT client and its connection to `options`' broker over this
    /// session's identity: mutual TLS with the IoT session's certificate
    /// and key (the same key, a PKCS#11 session included, not opened
    /// again), or a WebSocket presigned with the session's credentials on
    /// every (re)connect. Iterate the connection to drive it; after an
    /// error, iterating again reconnects.
    pub fn mqtt(&self, options: Mqtt) -> Result<(rumqttc::Client, rumqttc::Connection), Error> {
        let plan = self.handle.mqtt_plan(options)?;
        let presign: Presign = {
            let session = self.clone();
            let plan = plan.clone();
            // Called on the connection's thread, which may wait here for a
            // refresh: it has nothing else to do before it connects.
            Arc::new(move || Box::pin(future::ready(session.websocket_url(&plan))))
        };
        let options = refresh_session_io::mqtt::options(&plan, self.handle.device(), presign)?;
        Ok(rumqttc::Client::new(options, REQUEST_CAPACITY))
    }

    fn websocket_url(&self, plan: &MqttPlan) -> Result<String, Error> {
        let credentials = self.credentials()?;
        self.handle.websocket_url(plan, &credentials)
    }
}
