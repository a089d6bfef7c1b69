//! Test peers for refresh-session's integration tests: moto's STS server
//! and mosquitto, started per test, botocore as a SigV4 oracle, SoftHSM2
//! tokens, and the project's own loopback servers. Every server binds
//! 127.0.0.1 and is stopped when dropped.

pub mod bounded;
pub mod chain_oracle;
pub mod container_server;
pub mod faults;
pub mod faulty_peer;
pub mod fleet;
pub mod http_server;
pub mod imds_server;
pub mod iot_server;
pub mod issuer;
pub mod mosquitto;
pub mod moto;
pub mod mqtt_client;
pub mod pki;
pub mod presign_oracle;
pub mod softhsm;
pub mod sso_server;
pub mod sts_server;
pub mod ws_recorder;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

/// The manual's Rust examples, compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/rust.md")]
#[doc = include_str!("../../docs/iot-and-mqtt.md")]
#[doc = include_str!("../../docs/aws-sdk-rust.md")]
struct ManualExamples;
