//! An MFA token provider that runs a command, such as
//! `ykman oath accounts code --single aws`, and reads the code from its
//! output: the last six-digit run on standard output. Standard input and
//! error stay the terminal's, so a command can ask the user to touch a key;
//! and since a program that runs `credential_process` captures standard
//! error, the user is told on the terminal itself (`/dev/tty`), before the
//! command runs, that it may be waiting for a touch.

use refresh_session_core::Secret;
use refresh_session_core::command::CommandSpec;
use refresh_session_core::mfa::{self, MfaError};
use zeroize::Zeroize;

use crate::{command, terminal};

/// A command that prints an MFA code.
#[derive(Debug, Clone)]
pub struct MfaCommand {
    spec: CommandSpec,
}

impl MfaCommand {
    /// The command as the session's configuration describes it.
    pub fn new(spec: &CommandSpec) -> Self {
        Self { spec: spec.clone() }
    }

    /// Runs the command for a code of the MFA device `serial` and returns
    /// the code it printed.
    pub fn run(&self, serial: &str) -> Result<Secret, MfaError> {
        let program = self.spec.program_name();
        terminal::tell(&format!(
            "refresh-session: running `{program}` for an MFA code for {serial}; if your security key blinks, touch it\n"
        ));
        let fail = |problem: String| MfaError::Command {
            program: program.clone(),
            problem,
        };
        let mut output = command::run(&self.spec).map_err(fail)?;
        if output.status != Some(0) {
            output.stdout.zeroize();
            return Err(fail(match output.status {
                Some(code) => format!("exited with code {code}"),
                None => "was ended by a signal".into(),
            }));
        }
        let token =
            mfa::token_from_command_output(&program, &String::from_utf8_lossy(&output.stdout));
        output.stdout.zeroize();
        token
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sh(script: &str) -> MfaCommand {
        MfaCommand::new(&CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout: CommandSpec::DEFAULT_TIMEOUT,
            interactive: true,
        })
    }

    #[test]
    fn reads_the_last_six_digit_code() {
        let token = sh("echo 'Touch your key'; echo 'AWS:me 246810'")
            .run("arn:aws:iam::123456789012:mfa/me")
            .expect("a code");
        assert_eq!(token.expose(), "246810");
    }

    #[test]
    fn failures_are_typed_and_name_the_program() {
        for (script, named, problem) in [
            ("exit 3", "exit", "exited with code 3"),
            ("echo no code", "echo", "no six-digit code"),
            ("exec sleep 30", "exec", "did not finish"),
        ] {
            let mut command = sh(script);
            command.spec.timeout = Duration::from_millis(500);
            match command.run("arn:aws:iam::123456789012:mfa/me") {
                Err(MfaError::Command {
                    program,
                    problem: got,
                }) => {
                    assert_eq!(program, named, "the line's program");
                    assert!(got.contains(problem), "{got}");
                }
                other => panic!("{script}: {other:?}"),
            }
        }
    }
}
