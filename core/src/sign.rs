//! SigV4 signing of `http::Request`s with a session's credentials, through
//! `aws-sigv4`, at a time the caller passes in: in headers, or in the query
//! string of a presigned URL.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningInstructions,
    SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::Error;
use crate::secret::muted;

/// Signs `request` in place for `service` in `region` at `now`: adds
/// `x-amz-date`, `authorization` and, for temporary credentials,
/// `x-amz-security-token`. The URI must be absolute (`https://host/...`) and
/// header values must be text.
pub fn sign_request<B: AsRef<[u8]>>(
    request: &mut http::Request<B>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|value| (name.as_str(), value))
                .map_err(|_| Error::Signing(format!("header `{name}` is not text")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let uri = request.uri().to_string();
    let signable = Signable {
        method: request.method().as_str(),
        uri: &uri,
        headers,
        body: request.body().as_ref(),
    };
    let scope = Scope {
        credentials,
        region,
        service,
        now,
    };
    let instructions = signable.sign(&scope, SigningSettings::default())?;
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Presigns `GET url` for `service` in `region` at `now`, valid for
/// `expires`: the SigV4 parameters go into the query string, with `host` the
/// only signed header. The session token is appended after the signature
/// rather than signed, as AWS IoT's WebSocket endpoint requires.
pub fn presign_url(
    url: &str,
    credentials: &Credentials,
    region: &str,
    service: &str,
    expires: Duration,
    now: OffsetDateTime,
) -> Result<String, Error> {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    settings.session_token_mode = SessionTokenMode::Exclude;
    let signable = Signable {
        method: "GET",
        uri: url,
        headers: Vec::new(),
        body: &[],
    };
    let scope = Scope {
        credentials,
        region,
        service,
        now,
    };
    let instructions = signable.sign(&scope, settings)?;
    let mut request = http::Request::get(url)
        .body(())
        .map_err(|e| Error::Signing(format!("`{url}` is not a URL: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// Who signs, for what, when.
struct Scope<'a> {
    credentials: &'a Credentials,
    region: &'a str,
    service: &'a str,
    now: OffsetDateTime,
}

/// The parts of a request SigV4 reads.
struct Signable<'a> {
    method: &'a str,
    uri: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl Signable<'_> {
    fn sign(
        self,
        scope: &Scope<'_>,
        settings: SigningSettings,
    ) -> Result<SigningInstructions, Error> {
        let has_host = self
            .uri
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.host().is_some());
        if !has_host {
            return Err(Error::Signing(format!(
                "the request URI `{}` has no host; SigV4 signs absolute URIs such as https://sts.us-east-1.amazonaws.com/",
                self.uri
            )));
        }
        let identity: Identity = scope.credentials.to_sdk().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(scope.region)
            .name(scope.service)
            .time(SystemTime::from(scope.now))
            .settings(settings)
            .build()
            .map_err(|e| Error::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            self.method,
            self.uri,
            self.headers.into_iter(),
            SignableBody::Bytes(self.body),
        )
        .map_err(|e| Error::Signing(e.to_string()))?;
        // aws-sigv4 traces the canonical request, session token included.
        let (instructions, _signature) = muted(|| sign(signable, &params))
            .map_err(|e| Error::Signing(e.to_string()))?
            .into_parts();
        Ok(instructions)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::secret::Secret;

    #[test]
    fn signs_with_the_given_time_and_adds_the_session_token() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(Secret::new("session-token")),
            None,
        );
        let mut request = http::Request::post("https://sts.us-east-1.amazonaws.com/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"Action=GetCallerIdentity&Version=2011-06-15".to_vec())
            .expect("static request parts are valid");
        sign_request(
            &mut request,
            &credentials,
            "us-east-1",
            "sts",
            datetime!(2026-11-22 13:00 UTC),
        )
        .expect("signing succeeds");
        let headers = request.headers();
        assert_eq!(headers["x-amz-date"], "20261122T130000Z");
        assert_eq!(headers["x-amz-security-token"], "session-token");
        let authorization = headers["authorization"].to_str().expect("ascii");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/sts/aws4_request"
            ),
            "{authorization}"
        );
    }

    #[test]
    fn relative_uris_are_an_error_not_a_panic() {
        let credentials = Credentials::new("AKID", "secret", None, None);
        let mut request = http::Request::get("/just/a/path")
            .body(Vec::new())
            .expect("static request parts are valid");
        let error = sign_request(
            &mut request,
            &credentials,
            "us-east-1",
            "s3",
            datetime!(2026-01-01 0:00 UTC),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Signing(_)), "{error}");
    }
}
