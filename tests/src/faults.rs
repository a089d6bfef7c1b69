//! What each loopback-STS fault must lead to, in every adapter: a transient
//! fault once is retried to success; repeated, it ends in the typed error
//! below after the last attempt; a terminal fault is that typed error at
//! once, after one call.

use std::time::Duration;

use refresh_session_core::Error;
use refresh_session_core::error::{ErrorCode, TransportErrorKind};

use crate::sts_server::Fault;

/// How long the slow fault takes: past [`READ_TIMEOUT`].
pub const SLOW: Duration = Duration::from_secs(2);
/// The read timeout of the sessions under test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// The attempts each refresh may make.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a refresh may keep retrying.
pub const RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// Whether `error` is the one `fault` must end in.
pub fn is_expected(fault: Fault, error: &Error) -> bool {
    let service = |code: ErrorCode| matches!(error, Error::Service(e) if *e.code() == code);
    let transport = |kinds: &[TransportErrorKind]| matches!(error, Error::Transport(e) if kinds.contains(&e.kind()));
    let invalid =
        |code: u16| matches!(error, Error::InvalidResponse { status, .. } if *status == code);
    match fault {
        Fault::InternalError => invalid(500),
        Fault::Unavailable => service(ErrorCode::ServiceUnavailable),
        Fault::Throttling => service(ErrorCode::Throttling),
        Fault::RequestLimitExceeded => service(ErrorCode::RequestLimitExceeded),
        Fault::Slow(_) => transport(&[TransportErrorKind::Timeout]),
        Fault::Reset | Fault::Truncated => {
            transport(&[TransportErrorKind::Io, TransportErrorKind::Connect])
        }
        Fault::MalformedXml | Fault::WrongContentType => invalid(200),
        Fault::Oversized => transport(&[TransportErrorKind::TooLarge]),
    }
}

/// The longest a refresh may take to give up: the deadline, plus one
/// attempt that started just before it and ran into the read timeout (a
/// slow fault), plus scheduling slack.
pub fn give_up_within() -> Duration {
    RETRY_DEADLINE + SLOW + Duration::from_secs(2)
}
