//! A loopback STS: answers `AssumeRole`, `AssumeRoleWithWebIdentity`,
//! `GetSessionToken` and `GetCallerIdentity` in AWS's query-protocol format
//! and behaves like AWS where tests need it to (a `Date` header on every
//! answer; `SignatureDoesNotMatch` for requests signed more than 15 minutes
//! away from its clock; `GetSessionToken` only for long-term keys and with
//! an MFA code; with [`LoopbackSts::require_mfa`], `AssumeRole` only with a
//! code or signed by an MFA session), but issues credentials that live only
//! seconds, records
//! every request, can hold answers back, and can misbehave on cue
//! ([`Fault`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use refresh_session_core::harness::{
    SIGNING_TIME_LEEWAY, assume_role_response, dated, error_response, parse_amz_date,
    session_token_response, web_identity_response,
};
use refresh_session_core::{Credentials, Secret};
use time::OffsetDateTime;

use crate::faults::{Fault, Protocol};
use crate::http_server::{Reply, Request, Server};
use crate::issuer::IssuedCredential;

/// How the loopback STS behaves.
#[derive(Debug, Clone, Copy)]
pub struct StsOptions {
    /// How long issued credentials live.
    pub lifetime: Duration,
    /// How long each answer takes.
    pub delay: Duration,
}

#[derive(Default)]
struct Log {
    requests: Vec<HashMap<String, String>>,
    issued: Vec<IssuedCredential>,
    sessions: HashMap<String, String>,
    faults: VecDeque<Fault>,
    /// Keys answered `ExpiredToken` before their expiry.
    revoked: Vec<String>,
    /// Keys answered `InvalidClientTokenId`, as for a deleted access key.
    invalidated: Vec<String>,
    /// Requests refused because their key was revoked or invalidated.
    refused: usize,
    /// How far a request's signing time may be from the server's; AWS's
    /// 15 minutes unless a test sets it.
    signing_leeway: Option<time::Duration>,
    /// Requests refused because they were signed too long ago.
    stale_signatures: usize,
    /// The MFA sessions `GetSessionToken` issued, in order.
    mfa_sessions: Vec<IssuedCredential>,
    /// Roles are assumed only with MFA, as a trust policy with
    /// `aws:MultiFactorAuthPresent` demands.
    require_mfa: bool,
}

/// Holds `AssumeRole` answers back until released, so tests can act while
/// a refresh is provably in flight.
#[derive(Default)]
struct Gate {
    held: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn set(&self, held: bool) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = held;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        drop(
            self.opened
                .wait_while(held, |held| *held)
                .unwrap_or_else(|e| e.into_inner()),
        );
    }
}

/// What the server's threads share.
struct State {
    options: StsOptions,
    log: Mutex<Log>,
    assume_role_calls: AtomicU64,
    gate: Gate,
    /// Requests being answered now, and the most at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running server.
pub struct LoopbackSts {
    // Dropped first: the server joins its threads, which the gate must not
    // hold back.
    server: Option<Server>,
    state: Arc<State>,
}

impl LoopbackSts {
    /// Starts the server.
    pub fn start(options: StsOptions) -> Self {
        let state = Arc::new(State {
            options,
            log: Mutex::default(),
            assume_role_calls: AtomicU64::default(),
            gate: Gate::default(),
            in_flight: AtomicU64::default(),
            most_in_flight: AtomicU64::default(),
        });
        let server = {
            let state = state.clone();
            Server::start(move |request| {
                let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                state.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let reply = answer(request, &state);
                // Delayed here, not by the server, so that the answer
                // counts as in flight until it goes.
                std::thread::sleep(options.delay);
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                reply
            })
            .expect("a loopback port is free")
        };
        Self {
            server: Some(server),
            state,
        }
    }

    /// The endpoint URL to configure sessions with.
    pub fn url(&self) -> String {
        self.server.as_ref().map(Server::url).unwrap_or_default()
    }

    /// Refuses requests signed more than `leeway` from the server's time
    /// (AWS allows 15 minutes; x-amz-date has a resolution of a second).
    pub fn set_signing_leeway(&self, leeway: Duration) {
        self.state.lock().signing_leeway = time::Duration::try_from(leeway).ok();
    }

    /// How many requests were refused as signed too long ago.
    pub fn stale_signatures(&self) -> usize {
        self.state.lock().stale_signatures
    }

    /// How many injected faults no call has taken yet.
    pub fn pending_faults(&self) -> usize {
        self.state.lock().faults.len()
    }

    /// Answers the next `times` `AssumeRole` calls with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.state
            .lock()
            .faults
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Answers every later request signed with `access_key_id` with
    /// `403 ExpiredToken`, as AWS does for a revoked session.
    pub fn revoke(&self, access_key_id: &str) {
        self.state.lock().revoked.push(access_key_id.to_owned());
    }

    /// Answers every later request signed with `access_key_id` with
    /// `403 InvalidClientTokenId`, as AWS does once the access key behind
    /// a session is deleted.
    pub fn invalidate(&self, access_key_id: &str) {
        self.state.lock().invalidated.push(access_key_id.to_owned());
    }

    /// How many requests were refused for a revoked or invalidated key.
    pub fn refused(&self) -> usize {
        self.state.lock().refused
    }

    /// Holds back `AssumeRole` answers (the requests are still logged when
    /// they arrive) until [`release`](Self::release).
    pub fn hold(&self) {
        self.state.gate.set(true);
    }

    /// Lets held and later `AssumeRole` answers go.
    pub fn release(&self) {
        self.state.gate.set(false);
    }

    /// The most requests the server was answering at once.
    pub fn most_in_flight(&self) -> u64 {
        self.state.most_in_flight.load(Ordering::SeqCst)
    }

    /// Assumes roles only for requests with an MFA code or signed by an MFA
    /// session; others get AWS's `AccessDenied`.
    pub fn require_mfa(&self) {
        self.state.lock().require_mfa = true;
    }

    /// The MFA sessions `GetSessionToken` issued, in order.
    pub fn mfa_sessions(&self) -> Vec<IssuedCredential> {
        self.state.lock().mfa_sessions.clone()
    }

    /// How many `AssumeRole` calls issued credentials.
    pub fn assume_role_calls(&self) -> u64 {
        self.state.assume_role_calls.load(Ordering::SeqCst)
    }

    /// The form fields of every request, in order.
    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().requests.clone()
    }

    /// Every credential issued, in order.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.state.lock().issued.clone()
    }

    /// Checks that every credential was replaced by exactly one call, made
    /// between `earliest` after its issue and its expiry.
    pub fn assert_one_call_per_lifetime(&self, earliest: Duration) {
        let issued = self.issued();
        for pair in issued.windows(2) {
            let gap = pair[1].issued_at - pair[0].issued_at;
            let lifetime = pair[0].expires_at - pair[0].issued_at;
            assert!(
                gap >= earliest && gap < lifetime,
                "{} was replaced {gap} after issue; expected from {earliest:?} to its lifetime, {lifetime}",
                pair[0].access_key_id
            );
        }
    }
}

impl Drop for LoopbackSts {
    fn drop(&mut self) {
        self.release();
        drop(self.server.take());
    }
}

fn answer(request: &Request, state: &State) -> Reply {
    let form: HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    state.lock().requests.push(form.clone());
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    if action == "AssumeRole" {
        state.gate.pass();
    }
    let now = OffsetDateTime::now_utc();
    let fault = match action {
        "AssumeRole" => state.lock().faults.pop_front(),
        _ => None,
    };
    let good = match (action, authenticate(request, now, state)) {
        // The web identity token, not a signature, proves the caller.
        ("AssumeRoleWithWebIdentity", _) => web_identity(&form, state.options.lifetime, now),
        (_, Ok(signer)) => respond(action, &form, &signer, state, now),
        (_, Err(refusal)) => *refusal,
    };
    let reply = match fault {
        Some(fault) => fault.reply(good.into(), Protocol::Sts),
        None => good.into(),
    };
    with_date(reply, now)
}

/// The access key id of a signed request, or AWS's refusal.
fn authenticate(
    request: &Request,
    now: OffsetDateTime,
    state: &State,
) -> Result<String, Box<http::Response<Vec<u8>>>> {
    let signer = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .ok_or_else(|| {
            Box::new(error_response(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ))
        })?;
    let mut log = state.lock();
    if log.revoked.iter().any(|key| key == signer) {
        log.refused += 1;
        return Err(Box::new(error_response(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        )));
    }
    if log.invalidated.iter().any(|key| key == signer) {
        log.refused += 1;
        return Err(Box::new(error_response(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid",
        )));
    }
    let leeway = log.signing_leeway.unwrap_or(SIGNING_TIME_LEEWAY);
    match request.header("x-amz-date").and_then(parse_amz_date) {
        Some(at) if (at - now).abs() <= leeway => Ok(signer.to_owned()),
        _ => {
            log.stale_signatures += 1;
            Err(Box::new(bad_date()))
        }
    }
}

fn bad_date() -> http::Response<Vec<u8>> {
    error_response(
        403,
        "SignatureDoesNotMatch",
        "Signature expired: the request time is more than 15 minutes from the server's time",
    )
}

fn respond(
    action: &str,
    form: &HashMap<String, String>,
    signer: &str,
    state: &State,
    now: OffsetDateTime,
) -> http::Response<Vec<u8>> {
    let mut log = state.lock();
    match action {
        "AssumeRole" if log.require_mfa && !with_mfa(form, signer, &log) => error_response(
            403,
            "AccessDenied",
            "User is not authorized to perform: sts:AssumeRole: the role requires MFA",
        ),
        "GetSessionToken" => get_session_token(form, signer, &mut log, now),
        "AssumeRole" => {
            let n = state.assume_role_calls.fetch_add(1, Ordering::SeqCst) + 1;
            let issued = IssuedCredential {
                access_key_id: format!("ASIALOOP{n:08}"),
                issued_at: now,
                expires_at: now + state.options.lifetime,
            };
            let session = form.get("RoleSessionName").cloned().unwrap_or_default();
            log.sessions.insert(issued.access_key_id.clone(), session);
            let credentials = Credentials::new(
                issued.access_key_id.clone(),
                Secret::new(format!("loopback-secret-{n}")),
                Some(Secret::new(session_token(n))),
                Some(issued.expires_at),
            );
            log.issued.push(issued);
            assume_role_response(&credentials)
        }
        "GetCallerIdentity" => {
            let arn = match log.sessions.get(signer) {
                Some(session) => {
                    format!("arn:aws:sts::123456789012:assumed-role/loopback/{session}")
                }
                None => format!("arn:aws:iam::123456789012:user/{signer}"),
            };
            let body = format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{signer}</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            );
            let mut response = http::Response::new(body.into_bytes());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/xml"),
            );
            response
        }
        _ => error_response(400, "InvalidAction", "unknown action"),
    }
}

/// Whether an `AssumeRole` request proves MFA: a code with its device, or
/// a signature by an MFA session.
fn with_mfa(form: &HashMap<String, String>, signer: &str, log: &Log) -> bool {
    let coded = form.contains_key("SerialNumber") && form.contains_key("TokenCode");
    coded || log.mfa_sessions.iter().any(|s| s.access_key_id == signer)
}

/// `GetSessionToken`: only for long-term keys (AWS refuses session
/// credentials), with a device and a six-digit code; the MFA session lasts
/// `DurationSeconds`, else AWS's 12 hours.
fn get_session_token(
    form: &HashMap<String, String>,
    signer: &str,
    log: &mut Log,
    now: OffsetDateTime,
) -> http::Response<Vec<u8>> {
    if !signer.starts_with("AKIA") {
        return error_response(
            403,
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        );
    }
    let code = form
        .get("TokenCode")
        .map(String::as_str)
        .unwrap_or_default();
    if form.get("SerialNumber").is_none_or(String::is_empty)
        || code.len() != 6
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return error_response(
            403,
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
        );
    }
    let seconds = form
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(43_200);
    let n = log.mfa_sessions.len() + 1;
    let issued = IssuedCredential {
        access_key_id: format!("ASIAMFA{n:09}"),
        issued_at: now,
        expires_at: now + Duration::from_secs(seconds),
    };
    let credentials = Credentials::new(
        issued.access_key_id.clone(),
        Secret::new(format!("mfa-session-secret-{n}")),
        Some(Secret::new(format!("mfa-session-token-{n}"))),
        Some(issued.expires_at),
    );
    log.mfa_sessions.push(issued);
    session_token_response(&credentials)
}

/// The `n`th session token: `loopback-token-<n>-` filled to the length of
/// a real AssumeRole token (about a kilobyte of base64), so that what the
/// tests and the memory bench carry around is the size it would be.
fn session_token(n: u64) -> String {
    const LENGTH: usize = 1024;
    const FILL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut token = format!("loopback-token-{n}-");
    let fill = FILL.iter().cycle().map(|&b| char::from(b));
    token.extend(fill.take(LENGTH.saturating_sub(token.len())));
    token
}

/// `AssumeRoleWithWebIdentity`: credentials that depend only on the token
/// and the role, so that two clients given the same token (ours and
/// botocore) get the same access key.
fn web_identity(
    form: &HashMap<String, String>,
    lifetime: Duration,
    now: OffsetDateTime,
) -> http::Response<Vec<u8>> {
    let (Some(token), Some(role)) = (form.get("WebIdentityToken"), form.get("RoleArn")) else {
        return error_response(
            400,
            "InvalidIdentityToken",
            "a token and a role are required",
        );
    };
    if token.is_empty() || form.get("RoleSessionName").is_none_or(String::is_empty) {
        return error_response(
            400,
            "InvalidIdentityToken",
            "the token or session name is empty",
        );
    }
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(token, role), &mut hasher);
    let id = format!("{:016X}", std::hash::Hasher::finish(&hasher));
    let credentials = Credentials::new(
        format!("ASIAWEB{}", &id[..9]),
        Secret::new(format!("web-secret-{id}")),
        Some(Secret::new(format!("web-token-{id}"))),
        Some(now + lifetime),
    );
    web_identity_response(&credentials)
}

fn with_date(mut reply: Reply, now: OffsetDateTime) -> Reply {
    let stamped = dated(http::Response::new(Vec::new()), now);
    if let Some(date) = stamped.headers().get(http::header::DATE) {
        let date = date.to_str().unwrap_or_default().to_owned();
        reply.headers.push(("date".into(), date));
    }
    reply
}
