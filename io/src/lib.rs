//! The blocking IO that every refresh-session adapter performs the same
//! way. The core asks for it (it does no IO itself); the blocking adapter
//! calls these functions on its threads, async adapters on a blocking
//! thread of their runtime.
//!
//! ```no_run
//! use refresh_session_io::MfaCommand;
//!
//! let command = MfaCommand::new(["ykman", "oath", "accounts", "code", "--single", "aws"])
//!     .expect("a program to run");
//! let code = command.run()?; // a `Secret`: six digits, never printed
//! # Ok::<(), refresh_session_core::error::MfaError>(())
//! ```

mod mfa_command;

pub use mfa_command::MfaCommand;
