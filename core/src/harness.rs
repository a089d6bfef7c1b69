//! A test harness for the engine: a virtual clock that steps to the next
//! wake-up, a scripted upstream that answers or fails, and bounded drives.
//!
//! [`Sim`] holds an [`Engine`], the simulated time, and the work the engine
//! asked for that has not been answered yet. Tests interleave caller
//! requests, answers and clock steps in any order they like; nothing here
//! reads a real clock or sleeps. The response builders are public so that
//! loopback servers can answer in the same wire format.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::SessionConfig;
use crate::credentials::Credentials;
use crate::custom::CustomCredentials;
use crate::engine::{Access, Engine, Event, FetchId, Input, Permit, Request};
use crate::error::{HookError, TransportError, TransportErrorKind};
use crate::secret::Secret;

/// How the scripted upstream answers one piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Success: credentials that live this long from the time of the answer
    /// (for MFA and source requests: a valid code, valid source keys).
    Credentials(Duration),
    /// STS throttles (HTTP 400 `Throttling`); providers fail.
    Throttled,
    /// STS denies access (HTTP 403 `AccessDenied`); providers fail.
    Denied,
    /// The connection fails (a transport error); providers fail.
    Unreachable,
    /// STS answers `SignatureDoesNotMatch` (a wrong secret key); providers
    /// fail.
    SignatureMismatch,
}

/// A piece of work the engine asked for.
#[derive(Debug)]
pub enum Work {
    /// A fetch to admit (a fleet's member); every reply admits it.
    Admit(FetchId),
    /// An HTTP request to answer.
    Transmit(FetchId, Box<http::Request<Vec<u8>>>),
    /// An MFA code to supply.
    MfaToken(FetchId),
    /// A custom provider call to answer.
    Provider(FetchId),
    /// Source credentials to supply.
    Source(FetchId),
    /// A file to read; the simulation has none, so every read fails.
    ReadFile(FetchId),
    /// A file to write; the simulation has no files, so every write fails.
    WriteFile(FetchId),
    /// A command to run; the simulation runs none, so every run fails.
    RunCommand(FetchId),
}

impl Work {
    /// The fetch the work belongs to.
    pub fn fetch(&self) -> FetchId {
        match self {
            Work::Admit(id)
            | Work::Transmit(id, _)
            | Work::MfaToken(id)
            | Work::Provider(id)
            | Work::Source(id)
            | Work::ReadFile(id)
            | Work::WriteFile(id)
            | Work::RunCommand(id) => *id,
        }
    }
}

/// A credential the scripted upstream handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Its access key id (`ASIASIM00000001`, counting up).
    pub access_key_id: String,
    /// When it was handed out.
    pub at: OffsetDateTime,
    /// When it expires.
    pub expires: OffsetDateTime,
}

/// An engine on a virtual clock with a scripted upstream.
pub struct Sim {
    engine: Engine,
    now: OffsetDateTime,
    /// AWS's clock minus the local one.
    server_offset: time::Duration,
    /// Whether STS refuses requests signed too far from its time.
    checks_signing_time: bool,
    /// Unanswered work and when it was asked for.
    pending: VecDeque<(Work, OffsetDateTime)>,
    /// The longest time between asking for work and its answer.
    max_round_trip: time::Duration,
    events: Vec<Event>,
    issued: Vec<Issued>,
}

/// How far a request's signing time may be from AWS's before it answers
/// `SignatureDoesNotMatch` ("Signature expired").
pub const SIGNING_TIME_LEEWAY: time::Duration = time::Duration::minutes(15);

/// A fixed MFA code the simulated provider returns.
pub const MFA_CODE: &str = "123456";

impl Sim {
    /// A simulation of `config` starting at `start`, with no environment.
    pub fn new(
        config: SessionConfig,
        start: OffsetDateTime,
        seed: u64,
    ) -> Result<Self, crate::ConfigError> {
        let (engine, _) = Engine::new(config, &|_| None, start, seed)?;
        Ok(Self {
            engine,
            now: start,
            server_offset: time::Duration::ZERO,
            checks_signing_time: false,
            pending: VecDeque::new(),
            max_round_trip: time::Duration::ZERO,
            events: Vec::new(),
            issued: Vec::new(),
        })
    }

    /// The engine, for inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The simulated time.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Sets AWS's clock to the local one plus `offset` (every answer
    /// carries AWS's time in its `Date` header); with
    /// `checks_signing_time`, STS refuses requests signed more than
    /// [`SIGNING_TIME_LEEWAY`] away from its time, as AWS does.
    pub fn set_server_clock(&mut self, offset: time::Duration, checks_signing_time: bool) {
        self.server_offset = offset;
        self.checks_signing_time = checks_signing_time;
    }

    /// AWS's time (the simulated time plus the server clock's offset).
    pub fn server_now(&self) -> OffsetDateTime {
        self.now.saturating_add(self.server_offset)
    }

    /// A caller asks for credentials (first time).
    pub fn call(&mut self) -> Access {
        let access = self.engine.poll_access(self.now, None);
        self.collect();
        access
    }

    /// A caller that was told to wait for `fetch` asks again.
    pub fn recall(&mut self, fetch: FetchId) -> Access {
        let access = self.engine.poll_access(self.now, Some(fetch));
        self.collect();
        access
    }

    /// Starts an eager session's first fetch.
    pub fn prefetch(&mut self) -> FetchId {
        let id = self.engine.prefetch(self.now);
        self.collect();
        id
    }

    /// A service rejected a request signed with `access_key_id`.
    pub fn reject(&mut self, access_key_id: &str, rejection: crate::rejection::Rejection) -> bool {
        let retry = self
            .engine
            .credentials_rejected(self.now, access_key_id, rejection);
        self.collect();
        retry
    }

    /// How many pieces of work await an answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The unanswered work, oldest first.
    pub fn pending_work(&self) -> impl Iterator<Item = &Work> {
        self.pending.iter().map(|(work, _)| work)
    }

    /// The longest time any work waited for its answer: the round trip that
    /// bounds how precisely the engine can learn AWS's time.
    pub fn max_round_trip(&self) -> time::Duration {
        self.max_round_trip
    }

    /// Answers the oldest unanswered work with `reply`; `false` if there was
    /// none.
    pub fn answer(&mut self, reply: Reply) -> bool {
        let Some((work, asked_at)) = self.pending.pop_front() else {
            return false;
        };
        self.max_round_trip = self.max_round_trip.max(self.now - asked_at);
        let input = self.input_for(work, reply);
        self.engine.handle_input(self.now, input);
        self.collect();
        true
    }

    /// Answers work with `reply` until none is left, at most `limit` times;
    /// returns how many were answered.
    pub fn settle(&mut self, reply: Reply, limit: usize) -> usize {
        (0..limit).take_while(|_| self.answer(reply)).count()
    }

    /// Moves the clock forward by `by`, stopping at every engine timeout on
    /// the way to fire it.
    pub fn advance(&mut self, by: Duration) {
        let target = crate::saturating::add(self.now, by);
        while let Some(at) = self.engine.poll_timeout().filter(|at| *at <= target) {
            self.now = self.now.max(at);
            self.engine.handle_timeout(self.now);
            self.collect();
            if self.engine.poll_timeout() == Some(at) {
                break; // the engine kept the same timer; do not spin
            }
        }
        self.now = target;
    }

    /// Moves the clock to the engine's next timeout if there is one within
    /// `limit`; returns whether it did.
    pub fn step_to_timeout(&mut self, limit: Duration) -> bool {
        match self.engine.poll_timeout() {
            Some(at) if at <= crate::saturating::add(self.now, limit) => {
                self.now = self.now.max(at);
                self.engine.handle_timeout(self.now);
                self.collect();
                true
            }
            _ => false,
        }
    }

    /// Every credential handed out so far, oldest first.
    pub fn issued(&self) -> &[Issued] {
        &self.issued
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn collect(&mut self) {
        self.events
            .extend(std::iter::from_fn(|| self.engine.poll_event()));
        while let Some(request) = self.engine.poll_request() {
            let work = match request {
                Request::Admit { fetch } => Work::Admit(fetch),
                Request::Transmit { fetch, request, .. } => {
                    Work::Transmit(fetch, Box::new(request))
                }
                Request::MfaToken { fetch, .. } => Work::MfaToken(fetch),
                Request::CallProvider { fetch } => Work::Provider(fetch),
                Request::SourceCredentials { fetch, .. } => Work::Source(fetch),
                Request::ReadFile { fetch, .. } => Work::ReadFile(fetch),
                Request::WriteFile { fetch, .. } => Work::WriteFile(fetch),
                Request::RunCommand { fetch, .. } => Work::RunCommand(fetch),
            };
            self.pending.push_back((work, self.now));
        }
    }

    fn input_for(&mut self, work: Work, reply: Reply) -> Input {
        let failure = || HookError::new(format!("scripted failure: {reply:?}"));
        match (work, reply) {
            (Work::Admit(fetch), _) => Input::Admitted {
                fetch,
                permit: Permit::new(()),
            },
            (Work::Transmit(fetch, _), Reply::Unreachable) => Input::TransportFailed {
                fetch,
                error: TransportError::new(TransportErrorKind::Connect, "connection refused"),
            },
            (Work::Transmit(fetch, request), reply)
                if request.uri().path().starts_with("/role-aliases/") =>
            {
                // The IoT credential provider: unsigned, JSON.
                let server_now = self.server_now();
                let response = match reply {
                    Reply::Credentials(lifetime) => {
                        iot_credentials_response(&self.issue(server_now, lifetime))
                    }
                    Reply::Throttled => json_response(429, r#"{"message":"Rate exceeded"}"#),
                    _ => json_response(403, r#"{"message":"Access Denied"}"#),
                };
                Input::Response {
                    fetch,
                    response: dated(response, server_now),
                }
            }
            (Work::Transmit(fetch, request), reply) => {
                let server_now = self.server_now();
                let stale = self.checks_signing_time
                    && signing_time(&request)
                        .is_none_or(|at| (at - server_now).abs() > SIGNING_TIME_LEEWAY);
                let response = match reply {
                    _ if stale => error_response(403, "SignatureDoesNotMatch", "Signature expired"),
                    Reply::Credentials(lifetime) => {
                        assume_role_response(&self.issue(server_now, lifetime))
                    }
                    Reply::Throttled => error_response(400, "Throttling", "Rate exceeded"),
                    Reply::SignatureMismatch => error_response(
                        403,
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.",
                    ),
                    _ => error_response(
                        403,
                        "AccessDenied",
                        "not authorized to perform sts:AssumeRole",
                    ),
                };
                Input::Response {
                    fetch,
                    response: dated(response, server_now),
                }
            }
            (Work::Provider(fetch), Reply::Credentials(lifetime)) => Input::Provided {
                fetch,
                // A provider runs on this machine: its clock is ours.
                result: Ok(CustomCredentials::from(self.issue(self.now, lifetime))),
            },
            (Work::Provider(fetch), _) => Input::Provided {
                fetch,
                result: Err(failure()),
            },
            (Work::MfaToken(fetch), Reply::Credentials(_)) => Input::MfaToken {
                fetch,
                result: Ok(Secret::new(MFA_CODE)),
            },
            (Work::MfaToken(fetch), _) => Input::MfaToken {
                fetch,
                result: Err(failure()),
            },
            (Work::Source(fetch), Reply::Credentials(_)) => Input::SourceCredentials {
                fetch,
                result: Ok(Arc::new(Credentials::new(
                    "AKIDSOURCE",
                    "source-secret",
                    None,
                    None,
                ))),
            },
            (Work::Source(fetch), _) => Input::SourceCredentials {
                fetch,
                result: Err(crate::Error::Signing("scripted source failure".into())),
            },
            (Work::ReadFile(fetch), _) => Input::FileRead {
                fetch,
                result: Err("the simulation has no files".into()),
            },
            (Work::WriteFile(fetch), _) => Input::FileWritten {
                fetch,
                result: Err("the simulation has no files".into()),
            },
            (Work::RunCommand(fetch), _) => Input::CommandFinished {
                fetch,
                result: Err("the simulation runs no commands".into()),
            },
        }
    }

    fn issue(&mut self, at: OffsetDateTime, lifetime: Duration) -> Credentials {
        let n = self.issued.len() + 1;
        let issued = Issued {
            access_key_id: format!("ASIASIM{n:08}"),
            at,
            expires: crate::saturating::add(at, lifetime),
        };
        let credentials = Credentials::new(
            issued.access_key_id.clone(),
            Secret::new(format!("secret-{n}")),
            Some(Secret::new(format!("token-{n}"))),
            Some(issued.expires),
        );
        self.issued.push(issued);
        credentials
    }
}

/// `response` with a `Date` header saying `at`, as every HTTP server sends.
pub fn dated(mut response: http::Response<Vec<u8>>, at: OffsetDateTime) -> http::Response<Vec<u8>> {
    let date = at.to_offset(time::UtcOffset::UTC).format(IMF_FIXDATE).ok();
    if let Some(value) = date.and_then(|d| http::HeaderValue::from_str(&d).ok()) {
        response.headers_mut().insert(http::header::DATE, value);
    }
    response
}

/// When a SigV4-signed request says it was signed (`x-amz-date`).
pub fn signing_time<B>(request: &http::Request<B>) -> Option<OffsetDateTime> {
    parse_amz_date(request.headers().get("x-amz-date")?.to_str().ok()?)
}

/// Parses an `x-amz-date` value (`20261122T125232Z`).
pub fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(text, AMZ_DATE)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

const IMF_FIXDATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);
const AMZ_DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// An STS `AssumeRole` success answer carrying `credentials`, as AWS
/// formats it.
pub fn assume_role_response(credentials: &Credentials) -> http::Response<Vec<u8>> {
    let body = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/sim/session</Arn>
      <AssumedRoleId>AROASIMULATED:session</AssumedRoleId>
    </AssumedRoleUser>
    {}
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#,
        credentials_element(credentials)
    );
    xml_response(200, body)
}

/// An STS `GetSessionToken` success answer carrying `credentials`, as AWS
/// formats it (no assumed-role user: the caller stays the IAM user).
pub fn session_token_response(credentials: &Credentials) -> http::Response<Vec<u8>> {
    let body = format!(
        r#"<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetSessionTokenResult>
    {}
  </GetSessionTokenResult>
  <ResponseMetadata><RequestId>58c5dbae-abef-11e0-8cfe-09039844ac7d</RequestId></ResponseMetadata>
</GetSessionTokenResponse>"#,
        credentials_element(credentials)
    );
    xml_response(200, body)
}

/// The `<Credentials>` element of STS answers.
fn credentials_element(credentials: &Credentials) -> String {
    let expiration = credentials
        .expiration()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default();
    let token = credentials
        .session_token()
        .map(Secret::expose)
        .unwrap_or_default();
    format!(
        "<Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>",
        escape(credentials.access_key_id()),
        escape(credentials.secret_access_key().expose()),
        escape(token),
        expiration,
    )
}

/// An STS `AssumeRoleWithWebIdentity` success answer carrying
/// `credentials`, as AWS formats it.
pub fn web_identity_response(credentials: &Credentials) -> http::Response<Vec<u8>> {
    let body = String::from_utf8_lossy(assume_role_response(credentials).body())
        .replace("AssumeRoleResponse", "AssumeRoleWithWebIdentityResponse")
        .replace("AssumeRoleResult", "AssumeRoleWithWebIdentityResult");
    xml_response(200, body)
}

/// The JSON credentials of the container endpoint and IMDS (`AccessKeyId`,
/// `SecretAccessKey`, `Token`, `Expiration`), with IMDS's `Code` and
/// `Type` when `imds`.
pub fn metadata_credentials_response(
    credentials: &Credentials,
    imds: bool,
) -> http::Response<Vec<u8>> {
    let mut body = serde_json::json!({
        "AccessKeyId": credentials.access_key_id(),
        "SecretAccessKey": credentials.secret_access_key().expose(),
        "Token": credentials.session_token().map(Secret::expose).unwrap_or_default(),
        "Expiration": credentials.expiration().and_then(|at| at.format(&Rfc3339).ok()).unwrap_or_default(),
    });
    if imds {
        body["Code"] = "Success".into();
        body["Type"] = "AWS-HMAC".into();
    } else {
        body["AccountId"] = "123456789012".into();
    }
    json_response(200, &body.to_string())
}

/// The SSO portal's `GetRoleCredentials` answer carrying `credentials`
/// (expiration in epoch milliseconds).
pub fn sso_credentials_response(credentials: &Credentials) -> http::Response<Vec<u8>> {
    let millis = credentials
        .expiration()
        .map_or(0, |at| at.unix_timestamp_nanos() / 1_000_000);
    let body = serde_json::json!({
        "roleCredentials": {
            "accessKeyId": credentials.access_key_id(),
            "secretAccessKey": credentials.secret_access_key().expose(),
            "sessionToken": credentials.session_token().map(Secret::expose).unwrap_or_default(),
            "expiration": millis,
        }
    });
    json_response(200, &body.to_string())
}

/// The IoT credential provider's answer carrying `credentials`, as AWS
/// formats it.
pub fn iot_credentials_response(credentials: &Credentials) -> http::Response<Vec<u8>> {
    let expiration = credentials
        .expiration()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default();
    let body = format!(
        r#"{{"credentials":{{"accessKeyId":{},"secretAccessKey":{},"sessionToken":{},"expiration":{}}}}}"#,
        json_string(credentials.access_key_id()),
        json_string(credentials.secret_access_key().expose()),
        json_string(
            credentials
                .session_token()
                .map(Secret::expose)
                .unwrap_or_default()
        ),
        json_string(&expiration),
    );
    json_response(200, &body)
}

/// A JSON answer with `status`.
pub fn json_response(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// An STS `ErrorResponse`, as AWS formats it.
pub fn error_response(status: u16, code: &str, message: &str) -> http::Response<Vec<u8>> {
    let body = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>
  <RequestId>4d5b3c1e-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"#,
        escape(code),
        escape(message)
    );
    xml_response(status, body)
}

fn xml_response(status: u16, body: String) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.into_bytes());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    response
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}
