//! A loopback container credential endpoint (the ECS agent, EKS Pod
//! Identity) on 127.0.0.1, as AWS documents it: `GET` with the
//! `Authorization` token, JSON credentials that live seconds. Requests
//! without the right token are refused, and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use refresh_session_core::harness::{json_response, metadata_credentials_response};
use time::OffsetDateTime;

use crate::http_server::{Reply, Request, Server};
use crate::issuer::{IssuedCredential, Issuer};

const PATH: &str = "/v1/credentials";

/// The running endpoint.
pub struct LoopbackContainer {
    server: Server,
    issuer: Arc<Issuer>,
    refused: Arc<AtomicUsize>,
}

impl LoopbackContainer {
    /// Starts the endpoint, accepting `token` only.
    pub fn start(token: &str, lifetime: Duration) -> Self {
        let issuer = Arc::new(Issuer::new("CONTAINER", lifetime));
        let refused: Arc<AtomicUsize> = Arc::default();
        let server = {
            let (issuer, refused) = (issuer.clone(), refused.clone());
            let token = token.to_owned();
            Server::start(move |request| answer(request, &token, &issuer, &refused))
                .expect("a loopback port is free")
        };
        Self {
            server,
            issuer,
            refused,
        }
    }

    /// The URL, for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn url(&self) -> String {
        format!("{}{PATH}", self.server.url().trim_end_matches('/'))
    }

    /// Every credential issued.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.issuer.issued()
    }

    /// How many requests came without the right token.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

fn answer(request: &Request, token: &str, issuer: &Issuer, refused: &AtomicUsize) -> Reply {
    if request.method != "GET" || request.target != PATH {
        return json_response(404, r#"{"message":"not found"}"#).into();
    }
    if request.header("authorization") != Some(token) {
        refused.fetch_add(1, Ordering::SeqCst);
        return json_response(401, r#"{"message":"missing or wrong authorization token"}"#).into();
    }
    metadata_credentials_response(&issuer.issue(OffsetDateTime::now_utc()), false).into()
}
