//! HTTP for the engine's requests: ureq 3 with rustls, no redirects, a
//! bounded response body, and ureq's errors mapped to the core's
//! transport error kinds.

use std::io;

use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::engine::MAX_RESPONSE_BYTES;
use refresh_session_core::error::{TransportError, TransportErrorKind};
use refresh_session_core::secret::muted;

/// A connection-reusing HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    agent: ureq::Agent,
}

impl Transport {
    pub(crate) fn new(timeouts: HttpTimeouts) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A signed POST must not be replayed somewhere else.
            .max_redirects(0)
            .timeout_connect(Some(timeouts.connect))
            .timeout_recv_response(Some(timeouts.read))
            .timeout_recv_body(Some(timeouts.read))
            .user_agent(concat!("refresh-session/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.new_agent(),
        }
    }

    /// Sends `request` and reads the whole answer, whatever its status.
    pub(crate) fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        // ureq traces the bytes it sends and receives: session tokens, MFA
        // codes, secret keys.
        muted(|| {
            let response = self.agent.run(request).map_err(transport_error)?;
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
    match error.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable => {
            TransportErrorKind::Connect
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Io,
    }
}
