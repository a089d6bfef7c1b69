//! A loopback IAM Identity Center on 127.0.0.1: the portal and the OIDC
//! service, as AWS documents their wire formats.
//!
//! - Portal, `GetRoleCredentials`: `GET /federation/credentials?role_name=
//!   ..&account_id=..` with `x-amz-sso_bearer_token`. Credentials are the
//!   same for the same account and role (`ASIASSO<role><last digits of the
//!   account>`), so that two clients (ours and botocore) can be compared.
//! - OIDC (JSON bodies; errors as `x-amzn-ErrorType` and an OAuth `error`):
//!   `POST /client/register`, `POST /device_authorization`, and `POST
//!   /token` for device codes (answering `authorization_pending` until the
//!   user approves, `slow_down` to a client polling faster than the
//!   interval) and for refresh tokens (each used once: a renewal rotates
//!   it, as Identity Center does).
//!
//! The portal accepts the access tokens the server issued and has not
//! revoked, starting with the one it is started with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use refresh_session_core::harness::{json_response, sso_credentials_response};
use refresh_session_core::{Credentials, Secret};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::http_server::{Reply, Request, Server};

/// How long a device code lasts, and the polling interval the server asks
/// for.
const DEVICE_CODE_LIFETIME: u64 = 600;
const INTERVAL: Duration = Duration::from_secs(1);

/// A device login in progress.
struct Device {
    client_id: String,
    user_code: String,
    approved: bool,
    /// Its token was issued: the device code is spent.
    redeemed: bool,
    last_poll: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// Access tokens the portal accepts.
    access_tokens: Vec<String>,
    /// Refresh tokens not used yet, and the client each belongs to.
    refresh_tokens: HashMap<String, String>,
    clients: HashMap<String, String>,
    devices: HashMap<String, Device>,
    /// (account, role) of every call that got credentials.
    calls: Vec<(String, String)>,
    renewals: usize,
    device_polls: usize,
    slow_downs: usize,
    issued: usize,
    /// How long the access tokens `CreateToken` issues live.
    token_lifetime: Duration,
}

/// The running Identity Center.
pub struct LoopbackSso {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl LoopbackSso {
    /// Starts the server, accepting `token`; role credentials live
    /// `lifetime`, access tokens it issues eight hours.
    pub fn start(token: &str, lifetime: Duration) -> Self {
        let state = Arc::new(Mutex::new(State {
            access_tokens: vec![token.to_owned()],
            token_lifetime: Duration::from_secs(8 * 3600),
            ..State::default()
        }));
        let server = {
            let state = state.clone();
            Server::start(move |request| answer(request, lifetime, &state))
                .expect("a loopback port is free")
        };
        Self { server, state }
    }

    /// The endpoint, for `AWS_ENDPOINT_URL_SSO` and
    /// `AWS_ENDPOINT_URL_SSO_OIDC`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The (account, role) of every call that got credentials.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.state().calls.clone()
    }

    /// Registers a client and gives it a refresh token, as a device login
    /// would have: (client id, client secret, refresh token).
    pub fn registered_login(&self) -> (String, String, String) {
        let mut state = self.state();
        let (id, secret) = register(&mut state);
        state.issued += 1;
        let refresh = format!("sso-refresh-token-{}", state.issued);
        state.refresh_tokens.insert(refresh.clone(), id.clone());
        (id, secret, refresh)
    }

    /// Makes the access tokens `CreateToken` issues from now on live
    /// `lifetime`.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    /// Stops accepting `token` at the portal.
    pub fn revoke(&self, token: &str) {
        self.state().access_tokens.retain(|t| t != token);
    }

    /// The user confirms every device login started so far, as in the
    /// browser.
    pub fn approve(&self) {
        for device in self.state().devices.values_mut() {
            device.approved = true;
        }
    }

    /// The user codes of the device logins started so far.
    pub fn user_codes(&self) -> Vec<String> {
        self.state()
            .devices
            .values()
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// How many logins a refresh token renewed.
    pub fn renewals(&self) -> usize {
        self.state().renewals
    }

    /// How many device-code polls came, and how many were told to slow
    /// down.
    pub fn device_polls(&self) -> (usize, usize) {
        let state = self.state();
        (state.device_polls, state.slow_downs)
    }
}

fn answer(request: &Request, lifetime: Duration, state: &Mutex<State>) -> Reply {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let reply = match (request.method.as_str(), request.target.as_str()) {
        ("POST", "/client/register") => register_client(&body, &mut state),
        ("POST", "/device_authorization") => start_device_authorization(&body, &mut state),
        ("POST", "/token") => create_token(&body, &mut state),
        ("GET", target) if target.starts_with("/federation/credentials?") => {
            role_credentials(request, lifetime, &mut state)
        }
        _ => json_response(404, r#"{"message":"not found"}"#),
    };
    reply.into()
}

fn register(state: &mut State) -> (String, String) {
    let n = state.clients.len() + 1;
    let (id, secret) = (format!("client-{n}"), format!("client-secret-{n}"));
    state.clients.insert(id.clone(), secret.clone());
    (id, secret)
}

fn register_client(body: &Value, state: &mut State) -> http::Response<Vec<u8>> {
    if body["clientName"].as_str().is_none_or(str::is_empty) || body["clientType"] != "public" {
        return oauth_error("InvalidClientMetadataException", "invalid_client_metadata");
    }
    let (id, secret) = register(state);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    json_response(
        200,
        &json!({
            "clientId": id,
            "clientSecret": secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + 90 * 86_400,
        })
        .to_string(),
    )
}

/// The client the body names, if its secret is right.
fn client<'a>(body: &'a Value, state: &State) -> Option<&'a str> {
    let id = body["clientId"].as_str()?;
    (state.clients.get(id).map(String::as_str) == body["clientSecret"].as_str()).then_some(id)
}

fn start_device_authorization(body: &Value, state: &mut State) -> http::Response<Vec<u8>> {
    let (Some(id), Some(_)) = (client(body, state), body["startUrl"].as_str()) else {
        return oauth_error("InvalidClientException", "invalid_client");
    };
    let id = id.to_owned();
    let n = state.devices.len() + 1;
    let user_code = format!("ABCD-{n:04}");
    let device_code = format!("device-code-{n}");
    let answer = json!({
        "deviceCode": device_code,
        "userCode": user_code,
        "verificationUri": "https://device.sso.example/",
        "verificationUriComplete": format!("https://device.sso.example/?user_code={user_code}"),
        "expiresIn": DEVICE_CODE_LIFETIME,
        "interval": INTERVAL.as_secs(),
    });
    state.devices.insert(
        device_code,
        Device {
            client_id: id,
            user_code,
            approved: false,
            redeemed: false,
            last_poll: None,
        },
    );
    json_response(200, &answer.to_string())
}

fn create_token(body: &Value, state: &mut State) -> http::Response<Vec<u8>> {
    let Some(id) = client(body, state).map(str::to_owned) else {
        return oauth_error("InvalidClientException", "invalid_client");
    };
    match body["grantType"].as_str() {
        Some("refresh_token") => {
            let token = body["refreshToken"].as_str().unwrap_or_default();
            if state.refresh_tokens.remove(token).as_deref() != Some(id.as_str()) {
                return oauth_error("InvalidGrantException", "invalid_grant");
            }
            state.renewals += 1;
            issue(state, &id)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = body["deviceCode"].as_str().unwrap_or_default();
            state.device_polls += 1;
            let Some(device) = state
                .devices
                .get_mut(code)
                .filter(|d| d.client_id == id && !d.redeemed)
            else {
                return oauth_error("InvalidGrantException", "invalid_grant");
            };
            let now = Instant::now();
            let too_soon = device.last_poll.is_some_and(|last| {
                now.duration_since(last) < INTERVAL - Duration::from_millis(50)
            });
            device.last_poll = Some(now);
            if too_soon {
                state.slow_downs += 1;
                return oauth_error("SlowDownException", "slow_down");
            }
            if !device.approved {
                return oauth_error("AuthorizationPendingException", "authorization_pending");
            }
            device.redeemed = true;
            issue(state, &id)
        }
        _ => oauth_error("UnsupportedGrantTypeException", "unsupported_grant_type"),
    }
}

/// A new access token and refresh token for `client_id`.
fn issue(state: &mut State, client_id: &str) -> http::Response<Vec<u8>> {
    state.issued += 1;
    let access = format!("sso-access-token-{}", state.issued);
    let refresh = format!("sso-refresh-token-{}", state.issued);
    state.access_tokens.push(access.clone());
    state
        .refresh_tokens
        .insert(refresh.clone(), client_id.to_owned());
    json_response(
        200,
        &json!({
            "accessToken": access,
            "tokenType": "Bearer",
            "expiresIn": state.token_lifetime.as_secs(),
            "refreshToken": refresh,
        })
        .to_string(),
    )
}

fn oauth_error(error_type: &str, error: &str) -> http::Response<Vec<u8>> {
    let mut response = json_response(
        400,
        &json!({"error": error, "error_description": error_type}).to_string(),
    );
    response.headers_mut().insert(
        "x-amzn-errortype",
        http::HeaderValue::from_str(error_type).expect("a header value"),
    );
    response
}

fn role_credentials(
    request: &Request,
    lifetime: Duration,
    state: &mut State,
) -> http::Response<Vec<u8>> {
    let query = request
        .target
        .strip_prefix("/federation/credentials?")
        .unwrap_or_default();
    let query: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (Some(account), Some(role)) = (query.get("account_id"), query.get("role_name")) else {
        return json_response(
            400,
            r#"{"message":"account_id and role_name are required"}"#,
        );
    };
    let token = request.header("x-amz-sso_bearer_token").unwrap_or_default();
    if !state.access_tokens.iter().any(|t| t == token) {
        return json_response(401, r#"{"message":"Session token not found or invalid"}"#);
    }
    state.calls.push((account.clone(), role.clone()));
    let suffix = &account[account.len().saturating_sub(4)..];
    let key = format!("ASIASSO{}{suffix}", role.to_uppercase());
    let credentials = Credentials::new(
        key,
        Secret::new(format!("sso-secret-{role}")),
        Some(Secret::new(format!("sso-token-{role}"))),
        Some(OffsetDateTime::now_utc() + lifetime),
    );
    sso_credentials_response(&credentials)
}
