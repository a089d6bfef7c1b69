//! A loopback STS: answers `AssumeRole` and `GetCallerIdentity` in AWS's
//! query-protocol format, but issues credentials that live only seconds,
//! can answer slowly, and records every request, so tests can watch a
//! session across several expiries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use refresh_session_core::harness::{assume_role_response, error_response};
use refresh_session_core::{Credentials, Secret};
use time::OffsetDateTime;

use crate::http_server::{Reply, Request, Server};

/// How the loopback STS behaves.
#[derive(Debug, Clone, Copy)]
pub struct StsOptions {
    /// How long issued credentials live.
    pub lifetime: Duration,
    /// How long each answer takes.
    pub delay: Duration,
}

/// A credential the server issued.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    /// Its access key id (`ASIALOOP00000001`, counting up).
    pub access_key_id: String,
    /// When it was issued (server clock).
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

#[derive(Default)]
struct Log {
    requests: Vec<HashMap<String, String>>,
    issued: Vec<IssuedCredential>,
    sessions: HashMap<String, String>,
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

/// The running server.
pub struct LoopbackSts {
    // Dropped first: the server joins its threads, which the gate must not
    // hold back.
    server: Option<Server>,
    log: Arc<Mutex<Log>>,
    assume_role_calls: Arc<AtomicU64>,
    gate: Arc<Gate>,
}

impl LoopbackSts {
    /// Starts the server.
    pub fn start(options: StsOptions) -> Self {
        let log: Arc<Mutex<Log>> = Arc::default();
        let assume_role_calls: Arc<AtomicU64> = Arc::default();
        let gate: Arc<Gate> = Arc::default();
        let server = {
            let (log, calls, gate) = (log.clone(), assume_role_calls.clone(), gate.clone());
            Server::start(move |request| {
                let reply = answer(request, &options, &log, &calls, &gate);
                reply.delayed(options.delay)
            })
            .expect("a loopback port is free")
        };
        Self {
            server: Some(server),
            log,
            assume_role_calls,
            gate,
        }
    }

    /// The endpoint URL to configure sessions with.
    pub fn url(&self) -> String {
        self.server.as_ref().map(Server::url).unwrap_or_default()
    }

    /// Holds back `AssumeRole` answers (the requests are still logged when
    /// they arrive) until [`release`](Self::release).
    pub fn hold(&self) {
        self.gate.set(true);
    }

    /// Lets held and later `AssumeRole` answers go.
    pub fn release(&self) {
        self.gate.set(false);
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

    /// How many `AssumeRole` calls were answered.
    pub fn assume_role_calls(&self) -> u64 {
        self.assume_role_calls.load(Ordering::SeqCst)
    }

    /// The form fields of every request, in order.
    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.lock().requests.clone()
    }

    /// Every credential issued, in order.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.lock().issued.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for LoopbackSts {
    fn drop(&mut self) {
        self.release();
        drop(self.server.take());
    }
}

fn answer(
    request: &Request,
    options: &StsOptions,
    log: &Mutex<Log>,
    calls: &AtomicU64,
    gate: &Gate,
) -> Reply {
    let form: HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push(form.clone());
    if form
        .get("Action")
        .is_some_and(|action| action == "AssumeRole")
    {
        gate.pass();
    }
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    let Some(signer) = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
    else {
        return error_response(
            403,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        )
        .into();
    };
    match form.get("Action").map(String::as_str) {
        Some("AssumeRole") => {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let now = OffsetDateTime::now_utc();
            let issued = IssuedCredential {
                access_key_id: format!("ASIALOOP{n:08}"),
                issued_at: now,
                expires_at: now + options.lifetime,
            };
            let session = form.get("RoleSessionName").cloned().unwrap_or_default();
            log.sessions.insert(issued.access_key_id.clone(), session);
            let credentials = Credentials::new(
                issued.access_key_id.clone(),
                Secret::new(format!("loopback-secret-{n}")),
                Some(Secret::new(format!("loopback-token-{n}"))),
                Some(issued.expires_at),
            );
            log.issued.push(issued);
            assume_role_response(&credentials).into()
        }
        Some("GetCallerIdentity") => {
            let arn = match log.sessions.get(signer) {
                Some(session) => {
                    format!("arn:aws:sts::123456789012:assumed-role/loopback/{session}")
                }
                None => format!("arn:aws:iam::123456789012:user/{signer}"),
            };
            let body = format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{signer}</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>loopback</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            );
            Reply::new(200, "text/xml", body)
        }
        _ => error_response(400, "InvalidAction", "unknown action").into(),
    }
}
