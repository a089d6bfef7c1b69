//! Runs the commands the engine asks for (the MFA command,
//! `credential_process`): argv only (no shell unless the program is one),
//! in a process group of its own, standard output read in full (up to a
//! limit), standard error captured or left to the terminal as the command's
//! spec says. The deadline covers the output as well as the exit: a
//! grandchild that keeps standard output open is killed with the whole
//! group, never waited for. Variables holding refresh-session's own secrets
//! ([`SECRET_VARIABLES`]) are not passed on.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::command::{CommandOutput, CommandSpec, SECRET_VARIABLES};

/// Output past this is not credentials or a code.
const MAX_OUTPUT: usize = 1024 * 1024;
/// How often the child is checked for exit while its output is read.
const POLL: Duration = Duration::from_millis(10);

/// Which pipe a reader read.
#[derive(Clone, Copy)]
enum Pipe {
    Stdout,
    Stderr,
}

/// Runs `spec`; the error says why it did not run to completion.
pub fn run(spec: &CommandSpec) -> Result<CommandOutput, String> {
    let mut child = spawn(spec).map_err(|e| format!("could not be started: {e}"))?;
    let (sender, outputs) = mpsc::channel();
    // Read on other threads so a chatty command cannot fill a pipe and
    // block while we wait for it to exit.
    let mut readers = 0;
    if let Some(pipe) = child.stdout.take() {
        read_all(Pipe::Stdout, pipe, sender.clone());
        readers += 1;
    }
    if let Some(pipe) = child.stderr.take() {
        read_all(Pipe::Stderr, pipe, sender);
        readers += 1;
    }
    // A timeout past the end of `Instant` never expires.
    let deadline = Instant::now().checked_add(spec.timeout);
    let mut output = CommandOutput {
        status: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let mut exited = false;
    while !exited || readers > 0 {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            kill_group(&mut child);
            return Err(format!(
                "did not finish within {:?} (its output included)",
                spec.timeout
            ));
        }
        if !exited
            && let Some(status) = child
                .try_wait()
                .map_err(|e| format!("could not be waited for: {e}"))?
        {
            output.status = status.code();
            exited = true;
        }
        match outputs.recv_timeout(POLL) {
            Ok((pipe, Ok(bytes))) => {
                readers -= 1;
                match pipe {
                    Pipe::Stdout => output.stdout = bytes,
                    Pipe::Stderr => output.stderr = bytes,
                }
            }
            Ok((_, Err(problem))) => {
                kill_group(&mut child);
                return Err(problem);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => readers = 0,
        }
    }
    Ok(output)
}

fn spawn(spec: &CommandSpec) -> std::io::Result<Child> {
    let stderr = if spec.interactive {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for name in SECRET_VARIABLES {
        command.env_remove(name);
    }
    // Its own group, so that at the deadline whatever it started goes too.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn()
}

/// Kills the command's process group, then reaps the command.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let group = rustix::process::Pid::from_child(child);
        // An error means the group is gone already.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads `pipe` to its end on a thread of its own and sends what it read,
/// or why it stopped: a command that prints more than [`MAX_OUTPUT`] is
/// not one of ours.
fn read_all(
    which: Pipe,
    pipe: impl Read + Send + 'static,
    sender: mpsc::Sender<(Pipe, Result<Vec<u8>, String>)>,
) {
    thread::spawn(move || {
        let mut output = Vec::new();
        let read = pipe
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut output)
            .map_err(|e| format!("its output could not be read: {e}"));
        let result = read.and_then(|_| match output.len() > MAX_OUTPUT {
            true => Err(format!(
                "printed more than {} KiB on standard {}: that is not credentials or a code",
                MAX_OUTPUT / 1024,
                match which {
                    Pipe::Stdout => "output",
                    Pipe::Stderr => "error",
                }
            )),
            false => Ok(output),
        });
        // The receiver is gone once the command was given up on.
        let _ = sender.send((which, result));
    });
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
        let mut hanging = sh("sleep 30", false);
        hanging.timeout = Duration::from_millis(200);
        assert!(
            run(&hanging)
                .expect_err("killed")
                .contains("did not finish")
        );
    }

    #[test]
    fn a_grandchild_holding_the_output_open_is_killed_at_the_deadline() {
        let dir = std::env::temp_dir().join(format!("command-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a dir");
        let pid_file = dir.join("grandchild.pid");
        // The command exits at once; the grandchild it leaves behind keeps
        // standard output open.
        let mut spec = sh(
            &format!("sleep 30 & echo $! > '{}'; echo out", pid_file.display()),
            false,
        );
        spec.timeout = Duration::from_millis(500);
        let started = Instant::now();
        let problem = run(&spec).expect_err("the output never ended");
        assert!(problem.contains("did not finish"), "{problem}");
        assert!(started.elapsed() < Duration::from_secs(20), "bounded");
        let pid = std::fs::read_to_string(&pid_file).expect("the pid");
        let stat = format!("/proc/{}/stat", pid.trim());
        let gone = (0..100).any(|_| {
            let alive = std::fs::read_to_string(&stat)
                .is_ok_and(|s| !s.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')));
            if alive {
                thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        let _ = std::fs::remove_dir_all(&dir);
        assert!(gone, "the grandchild was killed with its group");
    }

    #[test]
    fn too_much_output_is_reported_as_such() {
        let problem = run(&sh("head -c 2000000 /dev/zero", false)).expect_err("too much");
        assert!(problem.contains("more than 1024 KiB"), "{problem}");
    }

    #[test]
    fn a_timeout_past_the_end_of_time_waits_for_the_command() {
        let mut endless = sh("echo done", false);
        endless.timeout = Duration::MAX;
        assert_eq!(run(&endless).expect("ran").stdout, b"done\n");
    }
}
