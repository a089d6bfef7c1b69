//! Asking the person at the terminal for an MFA code. The terminal itself
//! (`/dev/tty`), not standard input and error: an SDK that runs
//! `credential_process` captures those.

use refresh_session_blocking::BoxError;
use refresh_session_io::terminal::{self, TERMINAL};

/// Prompts for the code of MFA device `serial` and reads one line.
pub(crate) fn mfa_code(serial: &str) -> Result<String, BoxError> {
    terminal::ask(&format!("MFA code for {serial}: ")).map_err(|e| {
        format!("no terminal to ask for the MFA code ({TERMINAL}: {e}); pass --mfa-command").into()
    })
}
