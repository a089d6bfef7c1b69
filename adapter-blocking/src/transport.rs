//! HTTP for the engine's requests: ureq 3 with rustls, no redirects, a
//! bounded response body, and ureq's errors mapped to the core's
//! transport error kinds. An IoT session has a second agent that presents
//! the device's certificate.

use std::io;
use std::sync::Arc;

use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::engine::MAX_RESPONSE_BYTES;
use refresh_session_core::error::{TransportError, TransportErrorKind};
use refresh_session_core::iot::TlsIdentity;
use refresh_session_core::secret::muted;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};

use crate::mtls::MtlsConnector;

/// Connection-reusing HTTP clients: one for ordinary TLS, and one with the
/// device's identity if the session has one.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
    device: Option<ureq::Agent>,
}

impl Transport {
    pub(crate) fn new(timeouts: HttpTimeouts, device: Option<Arc<rustls::ClientConfig>>) -> Self {
        let device = device.map(|tls| {
            let connector = TcpConnector::default().chain(MtlsConnector::new(tls));
            ureq::Agent::with_parts(
                agent_config(timeouts),
                connector,
                DefaultResolver::default(),
            )
        });
        Self {
            agent: agent_config(timeouts).new_agent(),
            device,
        }
    }

    /// Sends `request` with the `tls` identity and reads the whole answer,
    /// whatever its status.
    pub(crate) fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let agent = match (tls, &self.device) {
            (TlsIdentity::Device, Some(device)) => device,
            (TlsIdentity::Device, None) => {
                return Err(TransportError::new(
                    TransportErrorKind::InvalidRequest,
                    "the request needs a device identity the session does not have",
                ));
            }
            _ => &self.agent,
        };
        // ureq traces the bytes it sends and receives: session tokens, MFA
        // codes, secret keys.
        muted(|| {
            let response = agent.run(request).map_err(transport_error)?;
            let (parts, mut body) = response.into_parts();
            let bytes = body
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_vec()
                .map_err(transport_error)?;
            Ok(http::Response::from_parts(parts, bytes))
        })
    }
}

fn agent_config(timeouts: HttpTimeouts) -> ureq::config::Config {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A signed POST must not be replayed somewhere else.
        .max_redirects(0)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.read))
        .timeout_recv_body(Some(timeouts.read))
        .user_agent(concat!("refresh-session/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn transport_error(error: ureq::Error) -> TransportError {
    let kind = match &error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound => TransportErrorKind::Dns,
        ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(e) => io_kind(e),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            TransportErrorKind::Tls
        }
        ureq::Error::BodyExceedsLimit(_) => TransportErrorKind::TooLarge,
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            TransportErrorKind::InvalidRequest
        }
        _ => TransportErrorKind::Io,
    };
    TransportError::new(kind, error.to_string())
}

fn io_kind(error: &io::Error) -> TransportErrorKind {
    // A TLS failure in the handshake, or after it (TLS 1.3 reports a
    // refused client certificate at the first read), arrives as io::Errors
    // around a rustls::Error.
    if refresh_session_io::tls::is_tls_failure(error) {
        return TransportErrorKind::Tls;
    }
    match error.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable => {
            TransportErrorKind::Connect
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Io,
    }
}
