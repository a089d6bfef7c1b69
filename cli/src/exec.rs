//! `exec`: a command run with the session's credentials behind a loopback
//! credential endpoint, so any AWS SDK in it refreshes from the session.
//!
//! The command never outlives us: signals sent to refresh-session are
//! forwarded to it, and on Linux it starts as `refresh-session exec-child`,
//! which sets the parent-death signal and then becomes the command, so that
//! it gets SIGTERM when we die, even of SIGKILL.

use std::ffi::OsString;
use std::io;
use std::process::{Command, ExitStatus};
use std::thread;

use refresh_session_blocking::RefreshableSession;
use refresh_session_core::command::SECRET_VARIABLES;
use rustix::process::{Pid, Signal};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::{Cause, Origin};

use crate::endpoint::Endpoint;
use crate::shadowing;

/// Variables that AWS SDKs read before the container endpoint: left in
/// place, they would win over it (`AWS_ACCESS_KEY` and `AWS_SECRET_KEY` are
/// the Java SDK's).
const SHADOWING: [&str; 8] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
];
/// Container endpoint variables the child gets from us instead.
const REPLACED: [&str; 3] = [
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];
/// Signals passed on to the command.
const FORWARDED: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];
/// Exit codes, as shells report them.
const CANNOT_RUN: i32 = 126;
const NOT_FOUND: i32 = 127;

/// What `exec` does when the command's own profile would win over the
/// endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnShadowing {
    Warn,
    Fail,
}

/// Runs `argv` until it exits and returns the exit code this process
/// should end with.
pub(crate) fn run(
    session: RefreshableSession,
    region: Option<String>,
    argv: &[OsString],
    on_shadowing: OnShadowing,
) -> i32 {
    let Some((program, _)) = argv.split_first() else {
        return 2;
    };
    if let Some(shadowing) = shadowing::find(&|name| std::env::var(name).ok()) {
        if on_shadowing == OnShadowing::Fail {
            eprintln!("refresh-session: error: {shadowing}");
            return 2;
        }
        eprintln!("refresh-session: warning: {shadowing}");
    }
    let endpoint = match Endpoint::start(session) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("refresh-session: cannot serve credentials on 127.0.0.1: {error}");
            return 1;
        }
    };
    // Signals that come before the command starts wait in the iterator.
    let signals = match SignalsInfo::<WithOrigin>::new(FORWARDED) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("refresh-session: cannot forward signals: {error}");
            return 1;
        }
    };
    let mut command = child_command(argv);
    for name in SHADOWING.iter().chain(&REPLACED).chain(&SECRET_VARIABLES) {
        command.env_remove(name);
    }
    command
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url())
        .env(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            endpoint.token().expose(),
        );
    if let Some(region) = region {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if std::env::var_os(name).is_none() {
                command.env(name, &region);
            }
        }
    }
    // Spawned from the main thread, which lives as long as we do: the
    // parent-death signal fires when the spawning thread ends.
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return cannot_run(program, &error),
    };
    let handle = signals.handle();
    let pid = Pid::from_child(&child);
    thread::spawn(move || forward(signals, pid));
    let status = child.wait();
    handle.close();
    match status {
        Ok(status) => exit_code(status),
        Err(error) => cannot_run(program, &error),
    }
}

/// `argv` behind the Linux trampoline, else as it is.
fn child_command(argv: &[OsString]) -> Command {
    #[cfg(target_os = "linux")]
    if let Ok(this) = std::env::current_exe() {
        let mut command = Command::new(this);
        command
            .arg("exec-child")
            .arg(std::process::id().to_string())
            .arg("--")
            .args(argv);
        return command;
    }
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    command
}

/// The trampoline: sets the parent-death signal, then becomes `argv`. If
/// `parent` died before the signal was set, nobody would send it: the
/// command does not start.
pub(crate) fn become_child(parent: u32, argv: &[OsString]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        return 2;
    };
    if let Err(error) = rustix::process::set_parent_process_death_signal(Some(Signal::TERM)) {
        eprintln!("refresh-session: cannot set the parent-death signal: {error}");
        return CANNOT_RUN;
    }
    let parent_alive =
        rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) == i32::try_from(parent).ok();
    if !parent_alive {
        return 128 + SIGTERM;
    }
    let error = std::os::unix::process::CommandExt::exec(Command::new(program).args(args));
    cannot_run(program, &error)
}

/// Passes each signal on to the command, but for those the kernel sent
/// from a terminal while the command is in our process group: the terminal
/// signalled the whole group, the command included.
fn forward(mut signals: SignalsInfo<WithOrigin>, child: Pid) {
    for Origin { signal, cause, .. } in signals.forever() {
        let from_terminal = cause == Cause::Kernel
            && rustix::process::getpgid(Some(child)).ok() == Some(rustix::process::getpgrp());
        if from_terminal {
            continue;
        }
        if let Some(signal) = Signal::from_named_raw(signal) {
            // An error means the command is gone: its exit ends `run`.
            let _ = rustix::process::kill_process(child, signal);
        }
    }
}

fn cannot_run(program: &OsString, error: &io::Error) -> i32 {
    eprintln!(
        "refresh-session: cannot run {}: {error}",
        program.to_string_lossy()
    );
    if error.kind() == io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        CANNOT_RUN
    }
}

/// The child's code, or 128 + the signal that ended it, as shells report.
fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return 128 + signal;
    }
    1
}
