//! An MFA token provider that runs a command, such as
//! `ykman oath accounts code --single aws`, and reads the code from its
//! output: argv only (no shell), a timeout, and the last six-digit run on
//! standard output. Standard input and error stay the terminal's, so a
//! command can ask the user to touch a key.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::Secret;
use refresh_session_core::config::MfaCommandSpec;
use refresh_session_core::mfa::{self, MfaError};
use zeroize::Zeroize;

/// Output past this is not a token code.
const MAX_OUTPUT: u64 = 64 * 1024;
/// How often the child is checked for exit.
const POLL: Duration = Duration::from_millis(10);

/// A command that prints an MFA code.
#[derive(Debug, Clone)]
pub struct MfaCommand {
    program: OsString,
    args: Vec<OsString>,
    timeout: Duration,
}

impl MfaCommand {
    /// The command as the session's configuration describes it.
    pub fn new(spec: &MfaCommandSpec) -> Self {
        Self {
            program: spec.program.clone(),
            args: spec.args.clone(),
            timeout: spec.timeout,
        }
    }

    /// Runs the command and returns the code it printed.
    pub fn run(&self) -> Result<Secret, MfaError> {
        let program = self.program.to_string_lossy().into_owned();
        let fail = |problem: String| MfaError::Command {
            program: program.clone(),
            problem,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(format!("could not be started: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("has no standard output".into()))?;
        // Read on another thread so a chatty command cannot fill the pipe
        // and block while we wait for it to exit.
        let reader = thread::spawn(move || {
            let mut output = Vec::new();
            let result = stdout.take(MAX_OUTPUT).read_to_end(&mut output);
            result.map(|_| output)
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    // Kill errors mean it exited meanwhile; wait reaps it.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("did not finish within {:?}", self.timeout)));
                }
                Ok(None) => thread::sleep(POLL),
                Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
            }
        };
        let mut output = reader
            .join()
            .map_err(|_| fail("output reader panicked".into()))?
            .map_err(|e| fail(format!("output could not be read: {e}")))?;
        if !status.success() {
            output.zeroize();
            return Err(fail(format!("exited with {status}")));
        }
        let token = mfa::token_from_command_output(&program, &String::from_utf8_lossy(&output));
        output.zeroize();
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> MfaCommand {
        MfaCommand::new(&MfaCommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout: MfaCommandSpec::DEFAULT_TIMEOUT,
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
            ("exit 3", "exited with"),
            ("echo no code", "no six-digit code"),
        ] {
            match sh(script).run() {
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
        let mut missing = sh("");
        missing.program = "/nonexistent/mfa-tool".into();
        assert!(
            matches!(missing.run(), Err(MfaError::Command { problem, .. }) if problem.contains("could not be started"))
        );
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        // `exec` so that killing the child kills the sleep, not just its shell.
        let mut command = sh("exec sleep 30");
        command.timeout = Duration::from_millis(200);
        match command.run() {
            Err(MfaError::Command { problem, .. }) => {
                assert!(problem.contains("did not finish"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
    }
}
