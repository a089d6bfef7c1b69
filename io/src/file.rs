//! Files the engine asks for (tokens, the SSO cache, the shared files),
//! read whole up to a limit: none of them is large, and an unbounded read
//! of the wrong path (a device, say) must not take the process's memory.
//! And files written for later runs and other tools (the SSO token cache,
//! the CLI's credential cache): private, and whole or not at all.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use refresh_session_core::Secret;
use refresh_session_core::engine::MAX_RESPONSE_BYTES;

/// Reads `path`, at most [`MAX_RESPONSE_BYTES`]; the error says why not.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, String> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_RESPONSE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Replaces `path` with `contents` ([`replace`]), as the engine asks
/// (`Request::WriteFile`); the error says why not.
pub fn write(path: &str, contents: &Secret) -> Result<(), String> {
    replace(path, contents.expose().as_bytes()).map_err(|e| format!("{path}: {e}"))
}

/// Replaces `path` with `contents`: written to a new file beside it that
/// only its owner may read and write (0600), synced, then renamed over
/// `path`, so that a concurrent reader sees the old file or the new one,
/// never half of one. A missing directory is created only its owner may
/// enter (0700), as the AWS CLI creates `~/.aws/sso/cache`.
pub fn replace(path: impl AsRef<Path>, contents: &[u8]) -> io::Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = write_new(&temporary, contents).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replacing_writes_a_private_file_whole() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("token.json");
        fs::write(&path, "old").expect("written");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("opened up");
        replace(&path, b"new").expect("replaced");
        assert_eq!(read(&path).expect("read"), b"new");
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).expect("listed").count(),
            1,
            "no leftovers"
        );
        let nested = dir.path().join("sso/cache/token.json");
        replace(&nested, b"x").expect("its directory made");
        let dir_mode = fs::metadata(dir.path().join("sso/cache"))
            .expect("made")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(replace(path.join("under-a-file"), b"x").is_err());
    }
}
