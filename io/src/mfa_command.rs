//! An MFA token provider that runs a command, such as
//! `ykman oath accounts code --single aws`, and reads the code from its
//! output: the last six-digit run on standard output. Standard input and
//! error stay the terminal's, so a command can ask the user to touch a key.

use refresh_session_core::Secret;
use refresh_session_core::command::CommandSpec;
use refresh_session_core::mfa::{self, MfaError};
use zeroize::Zeroize;

use crate::command;

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

    /// Runs the command and returns the code it printed.
    pub fn run(&self) -> Result<Secret, MfaError> {
        let program = self.spec.program_name();
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
            .run()
            .expect("a code");
        assert_eq!(token.expose(), "246810");
    }

    #[test]
    fn failures_are_typed_and_name_the_program() {
        for (script, problem) in [
            ("exit 3", "exited with code 3"),
            ("echo no code", "no six-digit code"),
            ("exec sleep 30", "did not finish"),
        ] {
            let mut command = sh(script);
            command.spec.timeout = Duration::from_millis(500);
            match command.run() {
                Err(MfaError::Command {
                    program,
                    problem: got,
                }) => {
                    assert_eq!(program, "sh");
                    assert!(got.contains(problem), "{got}");
                }
                other => panic!("{script}: {other:?}"),
            }
        }
    }
}
