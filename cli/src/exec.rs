//! `exec`: a command run with the session's credentials behind a loopback
//! credential endpoint, so any AWS SDK in it refreshes from the session.

use std::ffi::OsString;
use std::io;
use std::process::{Command, ExitStatus};

use refresh_session_blocking::RefreshableSession;

use crate::endpoint::Endpoint;

/// Variables that AWS SDKs read before the container endpoint: left in
/// place, they would win over it.
const SHADOWING: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
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

/// Runs `argv` until it exits and returns the exit code this process
/// should end with.
pub(crate) fn run(session: RefreshableSession, region: Option<String>, argv: &[OsString]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        return 2;
    };
    let endpoint = match Endpoint::start(session) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("refresh-session: cannot serve credentials on 127.0.0.1: {error}");
            return 1;
        }
    };
    let mut command = Command::new(program);
    command.args(args);
    for name in SHADOWING.iter().chain(&REPLACED) {
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
    match command.status() {
        Ok(status) => exit_code(status),
        Err(error) => {
            eprintln!(
                "refresh-session: cannot run {}: {error}",
                program.to_string_lossy()
            );
            if error.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
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
