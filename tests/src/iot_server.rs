//! A loopback AWS IoT credential provider: HTTPS on 127.0.0.1 that requires
//! a client certificate from the test CA, answers
//! `GET /role-aliases/<alias>/credentials` in AWS's JSON format with
//! credentials that live seconds, records who asked for what, and can
//! misbehave on cue ([`Fault`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use refresh_session_core::harness::{dated, iot_credentials_response, json_response};
use refresh_session_core::{Credentials, Secret};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::faults::{Fault, Protocol};
use crate::http_server::{Reply, Request, Server};
use crate::issuer::IssuedCredential;

/// How the loopback IoT credential provider behaves.
#[derive(Debug, Clone)]
pub struct IotOptions {
    /// The one role alias it knows.
    pub role_alias: String,
    /// How long issued credentials live.
    pub lifetime: Duration,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct IotCall {
    /// The request path.
    pub path: String,
    /// The `x-amzn-iot-thingname` header.
    pub thing_name: Option<String>,
    /// The `x-amzn-iot-credential-duration-seconds` header.
    pub duration_seconds: Option<String>,
    /// The client certificate the device presented (DER).
    pub client_certificate: Vec<u8>,
}

#[derive(Default)]
struct Log {
    calls: Vec<IotCall>,
    issued: Vec<IssuedCredential>,
    faults: VecDeque<Fault>,
}

/// The running server.
pub struct LoopbackIot {
    server: Server,
    log: Arc<Mutex<Log>>,
}

impl LoopbackIot {
    /// Starts the server with `tls` (see [`crate::pki::Authority::server_config`]).
    pub fn start(tls: Arc<ServerConfig>, options: IotOptions) -> Self {
        let log: Arc<Mutex<Log>> = Arc::default();
        let server = {
            let log = log.clone();
            Server::start_tls(tls, move |request| answer(request, &options, &log))
                .expect("a loopback port is free")
        };
        Self { server, log }
    }

    /// The endpoint to configure sessions with: `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        self.server.authority()
    }

    /// Answers the next `times` requests with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.lock().faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Every request that completed a TLS handshake, in order.
    pub fn calls(&self) -> Vec<IotCall> {
        self.lock().calls.clone()
    }

    /// Every credential issued, in order.
    pub fn issued(&self) -> Vec<IssuedCredential> {
        self.lock().issued.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(request: &Request, options: &IotOptions, log: &Mutex<Log>) -> Reply {
    let now = OffsetDateTime::now_utc();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.calls.push(IotCall {
        path: request.target.clone(),
        thing_name: request.header("x-amzn-iot-thingname").map(str::to_owned),
        duration_seconds: request
            .header("x-amzn-iot-credential-duration-seconds")
            .map(str::to_owned),
        client_certificate: request.peer_certificate.clone().unwrap_or_default(),
    });
    let expected = format!("/role-aliases/{}/credentials", options.role_alias);
    let fault = log.faults.pop_front();
    let response = if request.method != "GET" || request.target != expected {
        json_response(404, r#"{"message":"Role alias does not exist"}"#)
    } else {
        let n = log.issued.len() + 1;
        let issued = IssuedCredential {
            access_key_id: format!("ASIAIOT{n:08}"),
            issued_at: now,
            expires_at: now + options.lifetime,
        };
        let credentials = Credentials::new(
            issued.access_key_id.clone(),
            Secret::new(format!("iot-secret-{n}")),
            Some(Secret::new(format!("iot-token-{n}"))),
            Some(issued.expires_at),
        );
        log.issued.push(issued);
        iot_credentials_response(&credentials)
    };
    let reply: Reply = dated(response, now).into();
    match fault {
        Some(fault) => fault.reply(reply, Protocol::Iot),
        None => reply,
    }
}
