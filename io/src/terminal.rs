//! The controlling terminal (`/dev/tty`): where the person running a
//! program reads and answers even when its standard streams are captured,
//! as an SDK running `credential_process` captures them.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};

/// The terminal device.
pub const TERMINAL: &str = "/dev/tty";

fn open() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(TERMINAL)
}

/// Writes `message` on the terminal, if the process has one: a service
/// without one has nobody to tell.
pub fn tell(message: &str) {
    if let Ok(mut terminal) = open() {
        let _ = terminal.write_all(message.as_bytes());
    }
}

/// Asks `question` on the terminal and reads one line, trimmed.
pub fn ask(question: &str) -> io::Result<String> {
    let terminal = open()?;
    write!(&terminal, "{question}")?;
    let mut line = String::new();
    BufReader::new(&terminal).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
