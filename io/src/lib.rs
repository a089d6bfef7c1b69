//! What every refresh-session adapter shares. First, the one refresh
//! driver ([`Driver`]): the engine behind a lock, the lock-free fresh path,
//! and the rules of who waits and who works; an adapter supplies a
//! [`Backend`] (how callers and the [`Worker`] are woken, how a worker is
//! started) and performs each request its own way, and [`SessionHandle`]
//! is its session's shared part. Whatever goes wrong in a refresh (a panic,
//! a runtime that drops the worker, a thread that cannot start), every
//! waiting caller gets a typed error.
//!
//! Then the blocking IO every adapter performs the same way: building an
//! engine from the process environment and the session's clock, a fleet's
//! members on the monotonic clock, running MFA commands, building TLS
//! client configurations (the device identity of IoT sessions, with PEM or
//! PKCS#11 keys) and, with the `mqtt` feature, MQTT client options. The
//! blocking adapter calls these on its threads, async adapters on a
//! blocking thread of their runtime.
//!
//! ```no_run
//! use refresh_session_core::command::CommandSpec;
//! use refresh_session_io::MfaCommand;
//!
//! let command = MfaCommand::new(&CommandSpec {
//!     program: "ykman".into(),
//!     args: ["oath", "accounts", "code", "--single", "aws"].map(Into::into).to_vec(),
//!     timeout: CommandSpec::DEFAULT_TIMEOUT,
//!     interactive: true,
//! });
//! let code = command.run("arn:aws:iam::123456789012:mfa/me")?; // a `Secret`: six digits, never printed
//! # Ok::<(), refresh_session_core::error::MfaError>(())
//! ```

pub mod command;
mod driver;
mod engine;
pub mod file;
mod fleet;
mod fresh;
mod mfa_command;
#[cfg(feature = "mqtt")]
pub mod mqtt;
mod pkcs11;
mod session;
pub mod terminal;
pub mod tls;
pub mod unwind;

pub use driver::{Backend, Driver, Step, Worker};
pub use engine::{NewEngine, SystemClock, new_engine, profile_files};
pub use fleet::{FleetMembers, FleetPace};
pub use fresh::FreshCell;
pub use mfa_command::MfaCommand;
pub use session::SessionHandle;
