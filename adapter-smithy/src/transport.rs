//! The session's own requests through the AWS SDK's HTTP client, so that an
//! SDK user runs one HTTP stack: the `SdkConfig`'s `HttpClient`, with its
//! sleep and time source for the connect and read timeouts.

use std::future::poll_fn;
use std::pin::Pin;

use aws_smithy_runtime::client::auth::no_auth::{NO_AUTH_SCHEME_ID, NoAuthScheme};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::identity::no_auth::NoAuthIdentityResolver;
use aws_smithy_runtime::client::orchestrator::endpoints::StaticUriEndpointResolver;
use aws_smithy_runtime::client::retries::strategy::NeverRetryStrategy;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::SdkConfig;
use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::engine::MAX_RESPONSE_BYTES;
use refresh_session_core::error::{TransportError, TransportErrorKind};
use refresh_session_tokio::{BoxFuture, ConfigError, HttpTransport, TlsIdentity};

/// An [`HttpTransport`] over the AWS SDK's HTTP client.
///
/// It cannot present an IoT device certificate (the SDK's client has no
/// per-request client identity): IoT sessions keep their own transport.
#[derive(Debug, Clone)]
pub struct SdkHttpTransport {
    connector: SharedHttpConnector,
}

impl SdkHttpTransport {
    /// Sends through `client` with `config`'s sleep and time source and
    /// these timeouts.
    pub fn new(
        client: SharedHttpClient,
        config: &SdkConfig,
        timeouts: HttpTimeouts,
    ) -> Result<Self, ConfigError> {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .build();
        // `HttpClient::http_connector` takes runtime components, whose
        // builder insists on what an operation needs (endpoint, auth,
        // retries); a bare request uses none of them, so they are the
        // no-op ones. The client reads the sleep and time source.
        let components = RuntimeComponentsBuilder::new("refresh-session")
            .with_http_client(Some(client.clone()))
            .with_sleep_impl(config.sleep_impl())
            .with_time_source(config.time_source())
            .with_endpoint_resolver(Some(StaticUriEndpointResolver::uri("http://unused")))
            .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
                NO_AUTH_SCHEME_ID,
            ])))
            .with_auth_scheme(NoAuthScheme::new())
            .with_identity_resolver(NO_AUTH_SCHEME_ID, NoAuthIdentityResolver::new())
            .with_identity_cache(Some(IdentityCache::no_cache()))
            .with_retry_strategy(Some(NeverRetryStrategy::new()))
            .build()
            .map_err(|e| {
                ConfigError::new(
                    "sdk_config",
                    format!("the SDK's HTTP client cannot be set up: {e}"),
                )
            })?;
        Ok(Self {
            connector: client.http_connector(&settings, &components),
        })
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let request = HttpRequest::try_from(request.map(SdkBody::from))
            .map_err(|e| TransportError::new(TransportErrorKind::InvalidRequest, e.to_string()))?;
        let mut response = self
            .connector
            .call(request)
            .await
            .map_err(transport_error)?;
        let body = read_body(&mut response).await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = http::StatusCode::from_u16(response.status().as_u16())
            .map_err(|e| TransportError::new(TransportErrorKind::Io, e.to_string()))?;
        for (name, value) in response.headers() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::try_from(name),
                http::HeaderValue::try_from(value),
            ) {
                answer.headers_mut().append(name, value);
            }
        }
        Ok(answer)
    }
}

impl HttpTransport for SdkHttpTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
        tls: TlsIdentity,
    ) -> BoxFuture<'_, Result<http::Response<Vec<u8>>, TransportError>> {
        if tls == TlsIdentity::Device {
            let error = TransportError::new(
                TransportErrorKind::InvalidRequest,
                "the AWS SDK's HTTP client cannot present a device certificate; IoT sessions keep their own transport",
            );
            return Box::pin(std::future::ready(Err(error)));
        }
        Box::pin(self.exchange(request))
    }
}

/// The whole body, failing past [`MAX_RESPONSE_BYTES`].
async fn read_body(response: &mut HttpResponse) -> Result<Vec<u8>, TransportError> {
    let mut body = response.take_body();
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
    {
        let frame = frame.map_err(|e| {
            TransportError::new(TransportErrorKind::Io, DisplayErrorContext(&*e).to_string())
        })?;
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > MAX_RESPONSE_BYTES {
                return Err(TransportError::new(
                    TransportErrorKind::TooLarge,
                    format!("the response body exceeds {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn transport_error(error: ConnectorError) -> TransportError {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_user() {
        TransportErrorKind::InvalidRequest
    } else if error.is_io() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Io
    };
    TransportError::new(kind, DisplayErrorContext(&error).to_string())
}
