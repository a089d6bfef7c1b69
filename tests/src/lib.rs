//! Test peers for refresh-session's integration tests: moto's STS server,
//! started and bootstrapped per test, and the project's own loopback
//! servers. Every server binds 127.0.0.1 and is stopped when dropped.

pub mod faults;
pub mod faulty_peer;
pub mod http_server;
pub mod iot_server;
pub mod moto;
pub mod pki;
pub mod softhsm;
pub mod sts_server;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
