//! A loopback EC2 instance metadata service (IMDSv2) on 127.0.0.1, as AWS
//! documents it: `PUT /latest/api/token` with a time to live, then `GET
//! /latest/meta-data/iam/security-credentials/[role]` with the token. Its
//! credentials live seconds; its tokens can be expired on cue (as an
//! instance restart does), and it can have no role attached.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use refresh_session_core::harness::{json_response, metadata_credentials_response};
use time::OffsetDateTime;

use crate::http_server::{Reply, Request, Server};
use crate::issuer::{IssuedCredential, Issuer};

const TOKEN_PATH: &str = "/latest/api/token";
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

#[derive(Default)]
struct Tokens {
    /// Every token issued, and when it stops being accepted.
    issued: Vec<(String, OffsetDateTime)>,
    /// `PUT` requests seen.
    puts: usize,
}

/// The running service.
pub struct LoopbackImds {
    server: Server,
    tokens: Arc<Mutex<Tokens>>,
    issuer: Arc<Issuer>,
}

impl LoopbackImds {
    /// Starts the service with `role` attached (none if `None`), issuing
    /// credentials that live `lifetime`.
    pub fn start(role: Option<&str>, lifetime: Duration) -> Self {
        let tokens: Arc<Mutex<Tokens>> = Arc::default();
        let issuer = Arc::new(Issuer::new("IMDS", lifetime));
        let server = {
            let (tokens, issuer) = (tokens.clone(), issuer.clone());
            let role = role.map(str::to_owned);
            Server::start(move |request| answer(request, role.as_deref(), &tokens, &issuer))
                .expect("a loopback port is free")
        };
        Self {
            server,
            tokens,
            issuer,
        }
    }

    /// The endpoint, for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// Refuses every token issued so far.
    pub fn expire_tokens(&self) {
        let past = OffsetDateTime::now_utc() - Duration::from_secs(1);
        for (_, expires) in &mut lock(&self.tokens).issued {
            *expires = past;
        }
    }

    /// How many tokens were asked for.
    pub fn token_requests(&self) -> usize {
        lock(&self.tokens).puts
    }

    /// Every credential issued.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.issuer.issued()
    }
}

fn lock(tokens: &Mutex<Tokens>) -> MutexGuard<'_, Tokens> {
    tokens.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer(request: &Request, role: Option<&str>, tokens: &Mutex<Tokens>, issuer: &Issuer) -> Reply {
    let now = OffsetDateTime::now_utc();
    if request.method == "PUT" && request.target == TOKEN_PATH {
        let ttl = request
            .header(TTL_HEADER)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ttl| (1..=21_600).contains(ttl));
        let Some(ttl) = ttl else {
            return Reply::new(400, "text/plain", "a TTL of 1 to 21600 seconds is required");
        };
        let mut tokens = lock(tokens);
        tokens.puts += 1;
        let token = format!("imds-token-{}", tokens.puts);
        tokens
            .issued
            .push((token.clone(), now + Duration::from_secs(ttl)));
        let mut reply = Reply::new(200, "text/plain", token);
        reply.headers.push((TTL_HEADER.into(), ttl.to_string()));
        return reply;
    }
    let valid = request
        .header("x-aws-ec2-metadata-token")
        .is_some_and(|token| {
            lock(tokens)
                .issued
                .iter()
                .any(|(t, expires)| t == token && *expires > now)
        });
    if !valid {
        return Reply::new(401, "text/plain", "");
    }
    let Some(asked) = request.target.strip_prefix(ROLE_PATH) else {
        return Reply::new(404, "text/plain", "");
    };
    match (request.method.as_str(), role, asked) {
        ("GET", Some(role), "") => Reply::new(200, "text/plain", format!("{role}\n")),
        ("GET", Some(role), asked) if asked == role => {
            metadata_credentials_response(&issuer.issue(now), true).into()
        }
        _ => json_response(404, "").into(),
    }
}
