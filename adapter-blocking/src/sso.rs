//! Logging in to IAM Identity Center as `aws sso login` does: the core's
//! device login, driven on the calling thread with this crate's HTTP
//! client, and the token written to the cache the AWS CLI and every SDK
//! read, with what renews it.

use std::thread;
use std::time::Duration;

use refresh_session_core::config::HttpTimeouts;
use refresh_session_core::device_login::{Answer, DeviceLogin, Step};
use refresh_session_core::iot::TlsIdentity;
use refresh_session_core::oidc::OidcEndpoint;
use refresh_session_core::sso_token::{SsoLogin, SsoToken};
use refresh_session_core::{ConfigError, Error};
use time::OffsetDateTime;

use crate::transport::Transport;

/// How often [`LoginEvent::Waiting`] comes while the user confirms: a
/// spinner's pace.
const TICK: Duration = Duration::from_millis(100);

/// What the person logging in needs to know.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginEvent<'a> {
    /// Open `verification_uri` (or the complete one, which carries the
    /// code) in a browser and confirm that it shows `user_code`.
    Confirm {
        /// Where to go.
        verification_uri: &'a str,
        /// Where to go, the code filled in.
        verification_uri_complete: Option<&'a str>,
        /// The code the page must show.
        user_code: &'a str,
    },
    /// Still waiting for the confirmation; comes every 100 ms.
    Waiting,
}

/// Logs in to `login`'s portal with the device flow and writes the token
/// cache file (0600, its directory created 0700 if missing). `endpoint_url`
/// overrides the OIDC endpoint (`AWS_ENDPOINT_URL_SSO_OIDC`). Returns when
/// the user has confirmed, or fails when they refuse or the device code
/// expires (Identity Center's last ten minutes; none is waited on for more
/// than fifteen).
pub fn sso_login(
    login: &SsoLogin,
    endpoint_url: Option<&str>,
    mut on: impl FnMut(LoginEvent<'_>),
) -> Result<SsoToken, Error> {
    let endpoint = OidcEndpoint::resolve(&login.region, endpoint_url)?;
    let transport = Transport::new(HttpTimeouts::default(), None);
    let mut device = DeviceLogin::new(endpoint, &login.start_url, &login.region);
    let mut answer = None;
    loop {
        match device.step(OffsetDateTime::now_utc(), answer.take()) {
            Step::Transmit(request) => {
                answer = Some(match transport.send(request, TlsIdentity::Default) {
                    Ok(response) => Answer::Response(response),
                    Err(error) => Answer::Transport(error),
                });
            }
            Step::Show {
                verification_uri,
                verification_uri_complete,
                user_code,
            } => on(LoginEvent::Confirm {
                verification_uri: &verification_uri,
                verification_uri_complete: verification_uri_complete.as_deref(),
                user_code: &user_code,
            }),
            Step::WaitUntil(at) => {
                on(LoginEvent::Waiting);
                let left = at - OffsetDateTime::now_utc();
                thread::sleep(TICK.min(left.try_into().unwrap_or(Duration::ZERO)));
            }
            Step::Done(token) => return store(login, *token),
            Step::Failed(error) => return Err(error),
        }
    }
}

/// Writes the login to its cache file.
fn store(login: &SsoLogin, token: SsoToken) -> Result<SsoToken, Error> {
    let file = &login.cache_file;
    refresh_session_io::file::replace(file, token.render().expose().as_bytes()).map_err(|e| {
        ConfigError::new(
            "sso_cache",
            format!("the token cache {} cannot be written: {e}", file.display()),
        )
    })?;
    Ok(token)
}
