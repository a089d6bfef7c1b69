//! Faults the loopback servers inject, and what each must lead to in every
//! adapter: a transient fault once is retried to success; repeated, it ends
//! in the typed error below after the last attempt; a terminal fault is
//! that typed error at once, after one call.

use std::time::Duration;

use refresh_session_core::Error;
use refresh_session_core::error::{ErrorCode, TransportErrorKind};
use refresh_session_core::harness::{error_response, json_response};

use crate::http_server::Reply;

/// How long the slow fault takes: past [`READ_TIMEOUT`].
pub const SLOW: Duration = Duration::from_secs(2);
/// The read timeout of the sessions under test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// The attempts each refresh may make.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a refresh may keep retrying.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// The wire a fault is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// STS: XML answers.
    Sts,
    /// The IoT credential provider: JSON answers.
    Iot,
}

/// A way to answer a credentials call badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with an HTML body, as a load balancer sends.
    InternalError,
    /// HTTP 503.
    Unavailable,
    /// Throttling: HTTP 400 `Throttling` (STS), HTTP 429 (IoT).
    Throttling,
    /// HTTP 400 `RequestLimitExceeded` (STS), HTTP 429 (IoT).
    RequestLimitExceeded,
    /// The right answer, after this long.
    Slow(Duration),
    /// No answer: the connection closes.
    Reset,
    /// The right answer, cut off halfway through the body.
    Truncated,
    /// HTTP 200 with a body of the right format that ends too early.
    Malformed,
    /// HTTP 200 with a body of the other format (JSON for STS, XML for IoT).
    WrongContentType,
    /// HTTP 200 with a body over the 1 MiB response limit.
    Oversized,
    /// HTTP 403 `AccessDenied`: a trust policy removed, say. Not in
    /// [`Fault::all`]: the soak sends it in bursts.
    Denied,
    /// The right answer, with a `Date` header this far ahead of the
    /// server's clock (a proxy's, say). Not in [`Fault::all`].
    DateAhead(Duration),
}

impl Fault {
    /// Every fault, the slow one taking `slow`.
    pub fn all(slow: Duration) -> [Fault; 10] {
        [
            Fault::InternalError,
            Fault::Unavailable,
            Fault::Throttling,
            Fault::RequestLimitExceeded,
            Fault::Slow(slow),
            Fault::Reset,
            Fault::Truncated,
            Fault::Malformed,
            Fault::WrongContentType,
            Fault::Oversized,
        ]
    }

    /// Whether a client should retry after this fault (the others are the
    /// server's mistake, and trying again would not help).
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Fault::Malformed | Fault::WrongContentType | Fault::Oversized | Fault::Denied
        )
    }

    /// The faulty answer in place of `good`.
    pub fn reply(self, good: Reply, protocol: Protocol) -> Reply {
        let iot = protocol == Protocol::Iot;
        let error = |status, code: &str, message: &str| -> Reply {
            if iot {
                json_response(status, &format!(r#"{{"message":"{message}"}}"#)).into()
            } else {
                error_response(status, code, message).into()
            }
        };
        match self {
            Fault::InternalError => Reply::new(
                500,
                "text/html",
                "<html><body><h1>500 Internal Server Error</h1></body></html>",
            ),
            Fault::Unavailable => error(503, "ServiceUnavailable", "Service is unavailable"),
            Fault::Throttling if iot => error(429, "", "Rate exceeded"),
            Fault::Throttling => error(400, "Throttling", "Rate exceeded"),
            Fault::RequestLimitExceeded if iot => error(429, "", "Request limit exceeded"),
            Fault::RequestLimitExceeded => {
                error(400, "RequestLimitExceeded", "Request limit exceeded.")
            }
            Fault::Slow(delay) => good.delayed(delay),
            Fault::Reset => Reply::reset(),
            Fault::Truncated => good.truncated(),
            Fault::Malformed if iot => Reply::new(
                200,
                "application/json",
                r#"{"credentials":{"accessKeyId":"ASIA"#,
            ),
            Fault::Malformed => Reply::new(
                200,
                "text/xml",
                "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA",
            ),
            Fault::WrongContentType if iot => Reply::new(200, "text/xml", "<credentials/>"),
            Fault::WrongContentType => {
                Reply::new(200, "application/json", r#"{"message":"not XML"}"#)
            }
            Fault::Oversized => Reply::new(200, "text/xml", vec![b' '; 2 << 20]),
            Fault::Denied => error(
                403,
                "AccessDenied",
                "not authorized to perform sts:AssumeRole",
            ),
            Fault::DateAhead(ahead) => good.dated_ahead(ahead),
        }
    }
}

/// Whether `error` is the one `fault` on `protocol` must end in.
pub fn is_expected(fault: Fault, protocol: Protocol, error: &Error) -> bool {
    let service = |code: ErrorCode| matches!(error, Error::Service(e) if *e.code() == code);
    let transport = |kinds: &[TransportErrorKind]| matches!(error, Error::Transport(e) if kinds.contains(&e.kind()));
    let invalid =
        |code: u16| matches!(error, Error::InvalidResponse { status, .. } if *status == code);
    let iot = protocol == Protocol::Iot;
    match fault {
        // Any IoT answer other than 200 is the service's error.
        Fault::InternalError if iot => service(ErrorCode::InternalFailure),
        Fault::InternalError => invalid(500),
        Fault::Unavailable => service(ErrorCode::ServiceUnavailable),
        Fault::Throttling => service(ErrorCode::Throttling),
        Fault::RequestLimitExceeded if iot => service(ErrorCode::Throttling),
        Fault::RequestLimitExceeded => service(ErrorCode::RequestLimitExceeded),
        Fault::Slow(_) => transport(&[TransportErrorKind::Timeout]),
        Fault::Reset | Fault::Truncated => {
            transport(&[TransportErrorKind::Io, TransportErrorKind::Connect])
        }
        Fault::Malformed | Fault::WrongContentType => invalid(200),
        Fault::Oversized => transport(&[TransportErrorKind::TooLarge]),
        Fault::Denied => service(ErrorCode::AccessDenied),
        Fault::DateAhead(_) => false,
    }
}

/// The longest a refresh may take to give up: the deadline, plus one
/// attempt that started just before it and ran into the read timeout (a
/// slow fault), plus scheduling slack.
pub fn give_up_within() -> Duration {
    RETRY_DEADLINE + SLOW + Duration::from_secs(2)
}
