//! A loopback STS: answers `AssumeRole` and `GetCallerIdentity` in AWS's
//! query-protocol format, but issues credentials that live only seconds,
//! can answer slowly, and records every request, so tests can watch a
//! session across several expiries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// The running server.
pub struct LoopbackSts {
    server: Server,
    log: Arc<Mutex<Log>>,
    assume_role_calls: Arc<AtomicU64>,
}

impl LoopbackSts {
    /// Starts the server.
    pub fn start(options: StsOptions) -> Self {
        let log: Arc<Mutex<Log>> = Arc::default();
        let assume_role_calls: Arc<AtomicU64> = Arc::default();
        let server = {
            let (log, calls) = (log.clone(), assume_role_calls.clone());
            Server::start(move |request| {
                answer(request, &options, &log, &calls).delayed(options.delay)
            })
            .expect("a loopback port is free")
        };
        Self {
            server,
            log,
            assume_role_calls,
        }
    }

    /// The endpoint URL to configure sessions with.
    pub fn url(&self) -> String {
        self.server.url()
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

fn answer(request: &Request, options: &StsOptions, log: &Mutex<Log>, calls: &AtomicU64) -> Reply {
    let form: HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.requests.push(form.clone());
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
