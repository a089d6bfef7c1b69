//! What the fleet tests of both adapters share: the accounts, their keys
//! and the loopback STS the roles are assumed in.

use std::sync::Arc;
use std::time::Duration;

use refresh_session_core::fleet::FleetKey;
use refresh_session_core::{Credentials, Error};

use crate::sts_server::{LoopbackSts, StsOptions};

/// Six accounts, each with a `worker` role.
pub const ACCOUNTS: [&str; 6] = [
    "111111111111",
    "222222222222",
    "333333333333",
    "444444444444",
    "555555555555",
    "666666666666",
];

/// The `worker` role of `account`, with a fixed session name.
pub fn key(account: &str) -> FleetKey {
    FleetKey::new(format!("arn:aws:iam::{account}:role/worker")).session_name("fleet")
}

/// The ARNs of the `worker` roles of `accounts`.
pub fn roles(accounts: &[&str]) -> Vec<String> {
    accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:role/worker"))
        .collect()
}

/// A loopback STS issuing two-second credentials, for tests that watch
/// them expire.
pub fn short_lived_sts() -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(2),
        delay: Duration::ZERO,
    })
}

/// A loopback STS issuing hour-long credentials, each answer `delay` late.
pub fn sts(delay: Duration) -> LoopbackSts {
    LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(3600),
        delay,
    })
}

/// Past the expiry of [`short_lived_sts`]'s credentials.
pub const PAST_EXPIRY: Duration = Duration::from_millis(2100);

/// What a member handed out after its credential expired with STS down
/// (503): the expired `first` when set to serve expired credentials, else
/// STS's error.
pub fn assert_static_stability(
    serve_expired: bool,
    first: &Arc<Credentials>,
    after_expiry: Result<Arc<Credentials>, Error>,
) {
    match (serve_expired, after_expiry) {
        (true, Ok(served)) => assert_eq!(&served, first),
        (false, Err(Error::Service(error))) => assert_eq!(error.status(), 503),
        (_, other) => panic!("serve_expired {serve_expired}: {other:?}"),
    }
}
