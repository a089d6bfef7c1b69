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

    /// The program's name, for messages: for a shell running a command
    /// line (`sh -c 'ykman oath ...'`), the line's first word, the program
    /// the user named.
    pub fn program_name(&self) -> String {
        let shell = std::path::Path::new(&self.program)
            .file_name()
            .is_some_and(|name| name.to_string_lossy().ends_with("sh"));
        let named = match self.args.as_slice() {
            [flag, line, ..] if shell && flag == "-c" => {
                line.to_str().and_then(|l| l.split_whitespace().next())
            }
            _ => None,
        };
        named.map_or_else(
            || self.program.to_string_lossy().into_owned(),
            str::to_owned,
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str]) -> CommandSpec {
        CommandSpec {
            program: program.into(),
            args: args.iter().map(Into::into).collect(),
            timeout: CommandSpec::DEFAULT_TIMEOUT,
            interactive: true,
        }
    }

    #[test]
    fn a_shell_line_is_named_by_its_program() {
        let ykman = spec("sh", &["-c", "ykman oath accounts code --single aws"]);
        assert_eq!(ykman.program_name(), "ykman");
        assert_eq!(
            spec("/bin/bash", &["-c", " op read x"]).program_name(),
            "op"
        );
        assert_eq!(spec("ykman", &["oath"]).program_name(), "ykman");
        assert_eq!(
            spec("python3", &["-c", "print(1)"]).program_name(),
            "python3"
        );
        assert_eq!(spec("sh", &["-c", ""]).program_name(), "sh");
    }
}
