//! `sso login` without IO: the OAuth device authorization flow of IAM
//! Identity Center as a state machine. It says what to send, what to show
//! the user and until when to wait; it is told the answers and the time.
//! Polling honours `authorization_pending` and `slow_down` (RFC 8628), and
//! ends when the device code expires.
//!
//! ```
//! use refresh_session_core::device_login::{DeviceLogin, Step};
//! use refresh_session_core::oidc::OidcEndpoint;
//!
//! let endpoint = OidcEndpoint::resolve("eu-west-1", None)?;
//! let mut login = DeviceLogin::new(endpoint, "https://corp.awsapps.com/start", "eu-west-1");
//! let now = time::OffsetDateTime::now_utc();
//! assert!(matches!(login.step(now, None), Step::Transmit(_))); // RegisterClient
//! # Ok::<(), refresh_session_core::ConfigError>(())
//! ```

use std::time::Duration;

use time::OffsetDateTime;

use crate::chain::{ChainError, SourceKind};
use crate::error::{Error, TransportError};
use crate::oidc::{self, Client, DeviceAuthorization, OidcEndpoint, Pending};
use crate::saturating;
use crate::sso_token::SsoToken;

/// The client name the registration carries.
const CLIENT_NAME: &str = "refresh-session";
/// What RFC 8628 adds to the interval on `slow_down`.
const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The longest a login waits for the user: Identity Center's device codes
/// last ten minutes, and a server promising more is not waited on for ever.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// What the driver does next.
#[derive(Debug)]
pub enum Step {
    /// Send this and call [`DeviceLogin::step`] with the answer.
    Transmit(http::Request<Vec<u8>>),
    /// Show the user where to confirm, then call `step` with no answer.
    Show {
        /// Where to go.
        verification_uri: String,
        /// Where to go, the code filled in (for a browser).
        verification_uri_complete: Option<String>,
        /// The code to check.
        user_code: String,
    },
    /// Call `step` with no answer at this time (or later).
    WaitUntil(OffsetDateTime),
    /// Logged in: write this to the token cache.
    Done(Box<SsoToken>),
    /// The login failed.
    Failed(Error),
}

/// An answer to a [`Step::Transmit`].
#[derive(Debug)]
pub enum Answer {
    /// The HTTP answer, whatever its status.
    Response(http::Response<Vec<u8>>),
    /// No answer.
    Transport(TransportError),
}

/// A device login in progress.
#[derive(Debug)]
pub struct DeviceLogin {
    endpoint: OidcEndpoint,
    start_url: String,
    region: String,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    Start,
    Registering,
    Authorizing(Client),
    Showing(Client, Box<DeviceAuthorization>),
    /// Waiting before the next poll, or for its answer.
    Polling {
        client: Client,
        authorization: Box<DeviceAuthorization>,
        next_poll: OffsetDateTime,
        sent: bool,
    },
    Finished,
}

impl DeviceLogin {
    /// A login to the portal at `start_url`, in Identity Center's `region`.
    pub fn new(endpoint: OidcEndpoint, start_url: &str, region: &str) -> Self {
        Self {
            endpoint,
            start_url: start_url.to_owned(),
            region: region.to_owned(),
            stage: Stage::Start,
        }
    }

    /// Advances the login at `now`, given the answer to the last
    /// [`Step::Transmit`] (`None` otherwise).
    pub fn step(&mut self, now: OffsetDateTime, answer: Option<Answer>) -> Step {
        let stage = std::mem::replace(&mut self.stage, Stage::Finished);
        match (stage, answer) {
            (Stage::Start, None) => {
                self.stage = Stage::Registering;
                transmit(self.endpoint.register_client(CLIENT_NAME))
            }
            (Stage::Registering, Some(answer)) => {
                match response(answer).and_then(|r| oidc::parse_client(&r)) {
                    Ok(client) => {
                        let request = self
                            .endpoint
                            .start_device_authorization(&client, &self.start_url);
                        self.stage = Stage::Authorizing(client);
                        transmit(request)
                    }
                    Err(error) => Step::Failed(error),
                }
            }
            (Stage::Authorizing(client), Some(answer)) => {
                match response(answer).and_then(|r| oidc::parse_device_authorization(&r, now)) {
                    Ok(mut authorization) => {
                        let limit = saturating::add(now, MAX_WAIT);
                        authorization.expires_at = authorization.expires_at.min(limit);
                        let show = Step::Show {
                            verification_uri: authorization.verification_uri.clone(),
                            verification_uri_complete: authorization
                                .verification_uri_complete
                                .clone(),
                            user_code: authorization.user_code.clone(),
                        };
                        self.stage = Stage::Showing(client, Box::new(authorization));
                        show
                    }
                    Err(error) => Step::Failed(error),
                }
            }
            (Stage::Showing(client, authorization), None) => {
                let next_poll = saturating::add(now, authorization.interval);
                self.poll_at(client, authorization, next_poll, now)
            }
            (
                Stage::Polling {
                    client,
                    authorization,
                    next_poll,
                    sent: false,
                },
                None,
            ) => self.poll_at(client, authorization, next_poll, now),
            (
                Stage::Polling {
                    client,
                    mut authorization,
                    sent: true,
                    ..
                },
                Some(answer),
            ) => {
                let polled = response(answer).and_then(|r| oidc::parse_token(&r, now));
                match polled {
                    Ok(token) => Step::Done(Box::new(SsoToken {
                        start_url: Some(self.start_url.clone()),
                        region: Some(self.region.clone()),
                        access_token: token.access_token,
                        expires_at: token.expires_at,
                        client: Some(client),
                        refresh_token: token.refresh_token,
                    })),
                    Err(error) => match Pending::of(&error) {
                        Some(pending) => {
                            if pending == Pending::SlowDown {
                                // The interval is the server's number.
                                authorization.interval =
                                    authorization.interval.saturating_add(SLOW_DOWN);
                            }
                            let next_poll = saturating::add(now, authorization.interval);
                            self.poll_at(client, authorization, next_poll, now)
                        }
                        None => Step::Failed(error),
                    },
                }
            }
            (_, _) => Step::Failed(failure("the device login was stepped out of turn")),
        }
    }

    /// Polls at `next_poll`: waits until then, or sends now; gives up once
    /// the device code has expired.
    fn poll_at(
        &mut self,
        client: Client,
        authorization: Box<DeviceAuthorization>,
        next_poll: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Step {
        if now >= authorization.expires_at || next_poll >= authorization.expires_at {
            return Step::Failed(failure(
                "the device code expired before the login was confirmed in the browser; run the login again",
            ));
        }
        if now < next_poll {
            self.stage = Stage::Polling {
                client,
                authorization,
                next_poll,
                sent: false,
            };
            return Step::WaitUntil(next_poll);
        }
        let request = self
            .endpoint
            .device_token(&client, &authorization.device_code);
        self.stage = Stage::Polling {
            client,
            authorization,
            next_poll,
            sent: true,
        };
        transmit(request)
    }
}

fn failure(problem: &str) -> Error {
    Error::Chain(ChainError::Failed {
        kind: SourceKind::Sso,
        problem: problem.to_owned(),
    })
}

fn transmit(request: Result<http::Request<Vec<u8>>, Error>) -> Step {
    match request {
        Ok(request) => Step::Transmit(request),
        Err(error) => Step::Failed(error),
    }
}

fn response(answer: Answer) -> Result<http::Response<Vec<u8>>, Error> {
    match answer {
        Answer::Response(response) => Ok(response),
        Answer::Transport(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const START: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    fn json(status: u16, body: &str) -> Option<Answer> {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).expect("valid");
        Some(Answer::Response(response))
    }

    fn login() -> DeviceLogin {
        let endpoint = OidcEndpoint::resolve("eu-west-1", None).expect("endpoint");
        DeviceLogin::new(endpoint, "https://corp.awsapps.com/start", "eu-west-1")
    }

    /// Registers and starts an authorization expiring in `expires_in`
    /// seconds, polled every second; returns the login at the Show step.
    fn shown(expires_in: u64) -> DeviceLogin {
        let mut login = login();
        assert!(matches!(login.step(START, None), Step::Transmit(_)));
        let registered = login.step(
            START,
            json(
                200,
                r#"{"clientId":"cid","clientSecret":"cs","clientSecretExpiresAt":1803776000}"#,
            ),
        );
        let Step::Transmit(start) = registered else {
            panic!("{registered:?}")
        };
        assert_eq!(start.uri().path(), "/device_authorization");
        let body = format!(
            r#"{{"deviceCode":"dc","userCode":"ABCD-EFGH","verificationUri":"https://device.example/","verificationUriComplete":"https://device.example/?user_code=ABCD-EFGH","expiresIn":{expires_in},"interval":1}}"#
        );
        match login.step(START, json(200, &body)) {
            Step::Show { user_code, .. } => assert_eq!(user_code, "ABCD-EFGH"),
            other => panic!("{other:?}"),
        }
        login
    }

    #[test]
    fn polls_at_the_interval_slows_down_when_told_and_logs_in() {
        let mut login = shown(600);
        let mut now = START;
        let mut polls = Vec::new();
        let answers = [
            r#"{"error":"authorization_pending"}"#,
            r#"{"error":"slow_down"}"#,
            r#"{"error":"authorization_pending"}"#,
        ];
        let mut step = login.step(now, None);
        for answer in answers {
            let Step::WaitUntil(at) = step else {
                panic!("{step:?}")
            };
            now = at;
            assert!(matches!(login.step(now, None), Step::Transmit(_)));
            polls.push((now - START).whole_seconds());
            step = login.step(now, json(400, answer));
        }
        let Step::WaitUntil(at) = step else {
            panic!("{step:?}")
        };
        assert!(matches!(login.step(at, None), Step::Transmit(_)));
        polls.push((at - START).whole_seconds());
        // Every second, then every six once told to slow down.
        assert_eq!(polls, [1, 2, 8, 14]);
        let done = login.step(
            at,
            json(200, r#"{"accessToken":"at","expiresIn":28800,"refreshToken":"rt","tokenType":"Bearer"}"#),
        );
        let Step::Done(token) = done else {
            panic!("{done:?}")
        };
        assert_eq!(token.access_token.expose(), "at");
        assert_eq!(token.client.as_ref().map(|c| c.id.as_str()), Some("cid"));
        assert_eq!(
            token.start_url.as_deref(),
            Some("https://corp.awsapps.com/start")
        );
    }

    #[test]
    fn an_interval_from_the_end_of_time_ends_the_login_without_a_panic() {
        let mut login = login();
        login.step(START, None);
        login.step(
            START,
            json(
                200,
                r#"{"clientId":"cid","clientSecret":"cs","clientSecretExpiresAt":1803776000}"#,
            ),
        );
        let body = format!(
            r#"{{"deviceCode":"dc","userCode":"U","verificationUri":"https://d/","expiresIn":{max},"interval":{max}}}"#,
            max = u64::MAX
        );
        assert!(matches!(
            login.step(START, json(200, &body)),
            Step::Show { .. }
        ));
        // The first poll would come when the code ends: that is its end.
        let step = login.step(START, None);
        assert!(matches!(step, Step::Failed(_)), "{step:?}");
    }

    #[test]
    fn a_login_waits_fifteen_minutes_at_most_whatever_the_server_says() {
        let mut login = shown(u64::MAX);
        let mut now = START;
        let mut step = login.step(now, None);
        for _ in 0..2000 {
            match step {
                Step::WaitUntil(at) => {
                    now = at;
                    step = login.step(now, None);
                }
                Step::Transmit(_) => {
                    step = login.step(now, json(400, r#"{"error":"authorization_pending"}"#))
                }
                _ => break,
            }
        }
        assert!(matches!(step, Step::Failed(_)), "{step:?}");
        assert!(now - START <= MAX_WAIT, "gave up after {}", now - START);
    }

    #[test]
    fn an_expired_device_code_or_a_refusal_ends_the_login() {
        let mut login = shown(3);
        let mut now = START;
        let mut step = login.step(now, None);
        for _ in 0..10 {
            match step {
                Step::WaitUntil(at) => {
                    now = at;
                    step = login.step(now, None);
                }
                Step::Transmit(_) => {
                    step = login.step(now, json(400, r#"{"error":"authorization_pending"}"#))
                }
                _ => break,
            }
        }
        let Step::Failed(error) = step else {
            panic!("{step:?}")
        };
        assert!(error.to_string().contains("device code expired"), "{error}");

        let mut login = shown(600);
        let Step::WaitUntil(at) = login.step(START, None) else {
            panic!("a wait")
        };
        login.step(at, None);
        let denied = login.step(
            at,
            json(
                400,
                r#"{"error":"access_denied","error_description":"denied"}"#,
            ),
        );
        assert!(
            matches!(denied, Step::Failed(Error::Service(_))),
            "{denied:?}"
        );
        assert!(matches!(login.step(at, None), Step::Failed(_)), "finished");
    }
}
