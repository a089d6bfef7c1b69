//! What a driver needs to know of a session besides its engine, resolved
//! from the configuration with it: how to reach STS, the device identity
//! and timeouts to send with, the MFA command to run, and the MQTT
//! defaults. The engine keeps only what it decides with.

use crate::command::CommandSpec;
use crate::config::HttpTimeouts;
use crate::error::ConfigError;
use crate::fingerprint::Fingerprint;
use crate::iot::DeviceIdentity;
use crate::mqtt::{Mqtt, MqttPlan, SessionIdentity};
use crate::sts::StsEndpoint;

/// A session's resolved configuration, from [`Engine::new`].
///
/// [`Engine::new`]: crate::engine::Engine::new
#[derive(Debug, Clone)]
pub struct ResolvedSession {
    pub(crate) device: Option<DeviceIdentity>,
    /// For a custom session without a region this holds why `whoami` cannot
    /// call STS.
    pub(crate) sts_endpoint: Result<StsEndpoint, ConfigError>,
    pub(crate) http: HttpTimeouts,
    pub(crate) mfa_command: Option<CommandSpec>,
    pub(crate) thing_name: Option<String>,
    pub(crate) fingerprint: Fingerprint,
}

impl ResolvedSession {
    /// The TLS identity the driver presents for
    /// [`TlsIdentity::Device`](crate::iot::TlsIdentity::Device) requests:
    /// an IoT session's certificate and key.
    pub fn device_identity(&self) -> Option<&DeviceIdentity> {
        self.device.as_ref()
    }

    /// What the session was resolved from: the variables it read and the
    /// shared files it parsed.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The HTTP timeouts the driver applies.
    pub fn http_timeouts(&self) -> HttpTimeouts {
        self.http
    }

    /// The MFA command the driver runs to answer
    /// [`Request::MfaToken`](crate::engine::Request::MfaToken), if one is
    /// configured (else a provider answers).
    pub fn mfa_command(&self) -> Option<&CommandSpec> {
        self.mfa_command.as_ref()
    }

    /// The STS endpoint, for `whoami`; an error says why there is none.
    pub fn sts_endpoint(&self) -> Result<&StsEndpoint, ConfigError> {
        self.sts_endpoint.as_ref().map_err(Clone::clone)
    }

    /// Checks MQTT `options` and fills in what they leave to the session:
    /// its thing name as the client id, its device identity, its region.
    pub fn mqtt(&self, options: Mqtt) -> Result<MqttPlan, ConfigError> {
        options.resolve(SessionIdentity {
            thing_name: self.thing_name.as_deref(),
            device: self.device.as_ref(),
            region: self.sts_endpoint.as_ref().ok().map(StsEndpoint::region),
        })
    }
}
