//! A loopback IAM Identity Center (SSO) portal on 127.0.0.1, as AWS
//! documents `GetRoleCredentials`: `GET /federation/credentials?role_name=
//! ..&account_id=..` with `x-amz-sso_bearer_token`. It accepts one access
//! token, and the credentials it issues are the same for the same account
//! and role (`ASIASSO<role><last digits of the account>`), so that two
//! clients (ours and botocore) can be compared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use refresh_session_core::harness::{json_response, sso_credentials_response};
use refresh_session_core::{Credentials, Secret};
use time::OffsetDateTime;

use crate::http_server::{Reply, Request, Server};

/// The running portal.
pub struct LoopbackSso {
    server: Server,
    calls: Arc<Mutex<Vec<(String, String)>>>,
}

impl LoopbackSso {
    /// Starts the portal, accepting `token` only; credentials live
    /// `lifetime`.
    pub fn start(token: &str, lifetime: Duration) -> Self {
        let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let server = {
            let calls = calls.clone();
            let token = token.to_owned();
            Server::start(move |request| answer(request, &token, lifetime, &calls))
                .expect("a loopback port is free")
        };
        Self { server, calls }
    }

    /// The endpoint, for `AWS_ENDPOINT_URL_SSO`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The (account, role) of every call that got credentials.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn answer(
    request: &Request,
    token: &str,
    lifetime: Duration,
    calls: &Mutex<Vec<(String, String)>>,
) -> Reply {
    let Some(query) = request.target.strip_prefix("/federation/credentials?") else {
        return json_response(404, r#"{"message":"not found"}"#).into();
    };
    let query: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (Some(account), Some(role)) = (query.get("account_id"), query.get("role_name")) else {
        return json_response(
            400,
            r#"{"message":"account_id and role_name are required"}"#,
        )
        .into();
    };
    if request.header("x-amz-sso_bearer_token") != Some(token) {
        return json_response(401, r#"{"message":"Session token not found or invalid"}"#).into();
    }
    calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((account.clone(), role.clone()));
    let suffix = &account[account.len().saturating_sub(4)..];
    let key = format!("ASIASSO{}{suffix}", role.to_uppercase());
    let credentials = Credentials::new(
        key,
        Secret::new(format!("sso-secret-{role}")),
        Some(Secret::new(format!("sso-token-{role}"))),
        Some(OffsetDateTime::now_utc() + lifetime),
    );
    sso_credentials_response(&credentials).into()
}
