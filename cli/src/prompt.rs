//! Asking the person at the terminal for an MFA code. The terminal itself
//! (`/dev/tty`), not standard input and error: an SDK that runs
//! `credential_process` captures those.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};

use refresh_session_blocking::BoxError;

/// The terminal device.
const TERMINAL: &str = "/dev/tty";

/// Prompts for the code of MFA device `serial` and reads one line.
pub(crate) fn mfa_code(serial: &str) -> Result<String, BoxError> {
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .open(TERMINAL)
        .map_err(|e| {
            format!("no terminal to ask for the MFA code ({TERMINAL}: {e}); pass --mfa-command")
        })?;
    write!(&terminal, "MFA code for {serial}: ")?;
    let mut line = String::new();
    BufReader::new(&terminal).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
