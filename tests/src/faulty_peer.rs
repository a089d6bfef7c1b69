//! A loopback credential peer to inject faults into, whichever the
//! protocol: the fault tests of both adapters run the same checks against
//! STS and the IoT credential provider through it.

use std::time::Duration;

use refresh_session_core::iot::Iot;
use refresh_session_core::sts::AssumeRole;
use refresh_session_core::{Credentials, SessionOptions};

use crate::faults::{Fault, MAX_ATTEMPTS, Protocol, READ_TIMEOUT, RETRY_DEADLINE};
use crate::iot_server::{IotOptions, LoopbackIot};
use crate::pki::{Authority, Identity};
use crate::sts_server::{LoopbackSts, StsOptions};

const ROLE_ALIAS: &str = "faults";

/// A running peer.
pub enum FaultyPeer {
    /// The loopback STS.
    Sts(LoopbackSts),
    /// The loopback IoT credential provider, with a device it trusts.
    Iot(Box<IotPeer>),
}

/// The loopback IoT credential provider and a device it trusts.
pub struct IotPeer {
    server: LoopbackIot,
    // Signed the server's and the device's certificates.
    ca: Authority,
    device: Identity,
}

/// What a session for a peer is built from.
pub enum Method {
    /// `RefreshableSession::sts`.
    Sts(AssumeRole),
    /// `RefreshableSession::iot`.
    Iot(Iot),
}

impl FaultyPeer {
    /// Starts a peer speaking `protocol` whose credentials live `lifetime`.
    pub fn start(protocol: Protocol, lifetime: Duration) -> Self {
        match protocol {
            Protocol::Sts => Self::Sts(LoopbackSts::start(StsOptions {
                lifetime,
                delay: Duration::ZERO,
            })),
            Protocol::Iot => {
                let ca = Authority::new("Faults CA");
                let server = LoopbackIot::start(
                    ca.server_config(&ca.server(false)),
                    IotOptions {
                        role_alias: ROLE_ALIAS.to_owned(),
                        lifetime,
                    },
                );
                let device = ca.device("faulty-thing");
                Self::Iot(Box::new(IotPeer { server, ca, device }))
            }
        }
    }

    /// Answers the next `times` credential calls with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        match self {
            Self::Sts(sts) => sts.inject(fault, times),
            Self::Iot(iot) => iot.server.inject(fault, times),
        }
    }

    /// How many calls reached the peer.
    pub fn calls(&self) -> usize {
        match self {
            Self::Sts(sts) => sts.requests().len(),
            Self::Iot(iot) => iot.server.calls().len(),
        }
    }

    /// The credential method a session for this peer uses.
    pub fn method(&self) -> Method {
        match self {
            Self::Sts(_) => Method::Sts(AssumeRole::new("arn:aws:iam::123456789012:role/faults")),
            Self::Iot(iot) => Method::Iot(
                Iot::new(iot.server.endpoint(), ROLE_ALIAS)
                    .certificate_pem(&iot.device.certificate)
                    .private_key_pem(iot.device.key.as_str())
                    .ca_pem(&iot.ca.certificate),
            ),
        }
    }

    /// The options the fault tests share, on any adapter's builder.
    pub fn configure<B: SessionOptions>(&self, builder: B) -> B {
        let builder = builder
            .read_timeout(READ_TIMEOUT)
            .max_attempts(MAX_ATTEMPTS)
            .retry_deadline(RETRY_DEADLINE);
        match self {
            Self::Sts(sts) => builder
                .region("us-east-1")
                .endpoint_url(sts.url())
                .source_credentials(Credentials::new("AKIDFAULTS", "secret", None, None)),
            Self::Iot(_) => builder,
        }
    }
}
