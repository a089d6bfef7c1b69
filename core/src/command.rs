//! Commands the engine asks its driver to run: the MFA command and
//! `credential_process`. The driver runs the program with these arguments
//! (no shell unless the program is one), kills it at the timeout, and
//! reports what it printed.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// The variable the `refresh-session` command line reads a PKCS#11 PIN
/// from.
pub const PKCS11_PIN_VARIABLE: &str = "REFRESH_SESSION_PKCS11_PIN";

/// Variables that hold refresh-session's own secrets: no command a session
/// runs, and no program `refresh-session exec` starts, inherits them.
pub const SECRET_VARIABLES: [&str; 1] = [PKCS11_PIN_VARIABLE];

/// A command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// How long it may run.
    pub timeout: Duration,
    /// Whether its standard error is the terminal's, so that it can talk to
    /// the user (an MFA command asking for a touch); otherwise it is
    /// captured for error messages.
    pub interactive: bool,
}

impl CommandSpec {
    /// Time enough to find and touch a hardware key.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// The program's name, for messages.
    pub fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

/// What a finished command printed, and how it exited.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` if a signal ended it.
    pub status: Option<i32>,
    /// Standard output (it may hold secrets).
    pub stdout: Vec<u8>,
    /// Standard error, when captured.
    pub stderr: Vec<u8>,
}

impl fmt::Debug for CommandOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandOutput")
            .field("status", &self.status)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr", &String::from_utf8_lossy(&self.stderr))
            .finish()
    }
}
