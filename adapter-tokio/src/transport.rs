//! How a session sends the engine's HTTP requests: a small trait, so any
//! executor can bring its own client, and [`ReqwestTransport`], the
//! default: reqwest over rustls with the ring provider and the webpki root
//! certificates (as the blocking adapter's ureq), pooled keep-alive
//! connections, connect and read timeouts, no redirects, bounded bodies.
//! An IoT session has a second client that presents the device's
//! certificate.

use refresh_session_core::error::TransportError;
use refresh_session_core::iot::TlsIdentity;

use crate::runtime::BoxFuture;

/// An HTTP client for the engine's requests.
pub trait HttpTransport: Send + Sync + 'static {
    /// Sends `request` with the `tls` identity and reads the whole answer,
    /// whatever its status, failing with [`TransportErrorKind::TooLarge`]
    /// past [`MAX_RESPONSE_BYTES`].
    ///
    /// [`TransportErrorKind::TooLarge`]: refresh_session_core::error::TransportErrorKind::TooLarge
    /// [`MAX_RESPONSE_BYTES`]: refresh_session_core::engine::MAX_RESPONSE_BYTES
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>>;
}

/// One transport shared by several sessions.
impl<T: HttpTransport + ?Sized> HttpTransport for std::sync::Arc<T> {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        (**self).send(request, tls)
    }
}

#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use std::error::Error as _;
    use std::sync::Arc;

    use refresh_session_core::config::HttpTimeouts;
    use refresh_session_core::engine::MAX_RESPONSE_BYTES;
    use refresh_session_core::error::TransportErrorKind;
    use tracing::instrument::WithSubscriber;

    use super::*;

    /// reqwest with rustls (ring) and the webpki roots, and a second client
    /// for the device identity of IoT sessions.
    #[derive(Debug, Clone)]
    pub struct ReqwestTransport {
        client: reqwest::Client,
        device: Option<reqwest::Client>,
    }

    impl ReqwestTransport {
        /// Clients with these timeouts; `device` is the TLS configuration
        /// that presents the device's certificate, if any.
        pub fn new(
            timeouts: HttpTimeouts,
            device: Option<Arc<rustls::ClientConfig>>,
        ) -> Result<Self, reqwest::Error> {
            let client = |tls: rustls::ClientConfig| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(timeouts.connect)
                    .read_timeout(timeouts.read)
                    .user_agent(concat!("refresh-session/", env!("CARGO_PKG_VERSION")))
                    .build()
            };
            Ok(Self {
                client: client((*refresh_session_io::tls::default_config()).clone())?,
                device: device.map(|tls| client((*tls).clone())).transpose()?,
            })
        }
    }

    impl HttpTransport for ReqwestTransport {
        fn send(
            &self,
            request: http::Request<Vec<u8>>,
            tls: TlsIdentity,
        ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
            let client = match (tls, &self.device) {
                (TlsIdentity::Device, Some(device)) => device,
                (TlsIdentity::Device, None) => {
                    let error = TransportError::new(
                        TransportErrorKind::InvalidRequest,
                        "the request needs a device identity the session does not have",
                    );
                    return Box::pin(std::future::ready(Err(error)));
                }
                _ => &self.client,
            };
            // Like ureq, the HTTP stack may trace what it sends and receives:
            // no subscriber sees this request's events.
            let exchange = async move {
                let request = reqwest::Request::try_from(request).map_err(transport_error)?;
                let mut response = client.execute(request).await.map_err(transport_error)?;
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                    if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
                        return Err(TransportError::new(
                            TransportErrorKind::TooLarge,
                            format!("the response body exceeds {MAX_RESPONSE_BYTES} bytes"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                let mut answer = http::Response::new(body);
                *answer.status_mut() = response.status();
                *answer.headers_mut() = std::mem::take(response.headers_mut());
                Ok(answer)
            };
            Box::pin(exchange.with_subscriber(tracing::Dispatch::none()))
        }
    }

    fn transport_error(error: reqwest::Error) -> TransportError {
        let kind = if error.is_timeout() {
            TransportErrorKind::Timeout
        } else if is_tls(&error) {
            TransportErrorKind::Tls
        } else if error.is_connect() {
            TransportErrorKind::Connect
        } else if error.is_builder() || error.is_request() && error.url().is_none() {
            TransportErrorKind::InvalidRequest
        } else {
            TransportErrorKind::Io
        };
        TransportError::new(kind, describe(&error))
    }

    /// The error and its causes: reqwest's own message alone ("error sending
    /// request") does not say what went wrong.
    fn describe(error: &reqwest::Error) -> String {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    fn is_tls(error: &reqwest::Error) -> bool {
        refresh_session_io::tls::is_tls_failure(error)
    }
}
