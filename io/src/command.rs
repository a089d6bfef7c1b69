//! Runs the commands the engine asks for (the MFA command,
//! `credential_process`): argv only (no shell unless the program is one), a
//! timeout after which the command is killed, standard output read in full
//! (up to a limit), standard error captured or left to the terminal as the
//! command's spec says. Standard input stays the terminal's, so a command
//! can prompt.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::command::{CommandOutput, CommandSpec};

/// Output past this is not credentials or a code.
const MAX_OUTPUT: u64 = 1024 * 1024;
/// How often the child is checked for exit.
const POLL: Duration = Duration::from_millis(10);

/// Runs `spec`; the error says why it did not run to completion.
pub fn run(spec: &CommandSpec) -> Result<CommandOutput, String> {
    let stderr = if spec.interactive {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    // Read on other threads so a chatty command cannot fill a pipe and
    // block while we wait for it to exit.
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    // A timeout past the end of `Instant` never expires.
    let deadline = Instant::now().checked_add(spec.timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                // Kill errors mean it exited meanwhile; wait reaps it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not finish within {:?}", spec.timeout));
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    let collect = |reader: Option<thread::JoinHandle<std::io::Result<Vec<u8>>>>| {
        reader
            .map(|r| r.join().map_err(|_| "an output reader panicked".to_owned()))
            .transpose()?
            .transpose()
            .map_err(|e| format!("its output could not be read: {e}"))
            .map(Option::unwrap_or_default)
    };
    Ok(CommandOutput {
        status: status.code(),
        stdout: collect(stdout)?,
        stderr: collect(stderr)?,
    })
}

fn read_all(pipe: impl Read + Send + 'static) -> thread::JoinHandle<std::io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut output = Vec::new();
        pipe.take(MAX_OUTPUT)
            .read_to_end(&mut output)
            .map(|_| output)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, interactive: bool) -> CommandSpec {
        CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout: CommandSpec::DEFAULT_TIMEOUT,
            interactive,
        }
    }

    #[test]
    fn captures_output_and_exit_codes() {
        let output = run(&sh("echo out; echo err >&2; exit 3", false)).expect("ran");
        assert_eq!(output.status, Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        let output = run(&sh("echo out", true)).expect("ran");
        assert_eq!((output.status, output.stderr.len()), (Some(0), 0));
    }

    #[test]
    fn a_missing_program_and_a_hanging_one_are_errors() {
        let mut missing = sh("", false);
        missing.program = "/nonexistent/tool".into();
        assert!(
            run(&missing)
                .expect_err("missing")
                .contains("could not be started")
        );
        // `exec` so that killing the child kills the sleep, not just its shell.
        let mut hanging = sh("exec sleep 30", false);
        hanging.timeout = Duration::from_millis(200);
        assert!(
            run(&hanging)
                .expect_err("killed")
                .contains("did not finish")
        );
    }

    #[test]
    fn a_timeout_past_the_end_of_time_waits_for_the_command() {
        let mut endless = sh("echo done", false);
        endless.timeout = Duration::MAX;
        assert_eq!(run(&endless).expect("ran").stdout, b"done\n");
    }
}
