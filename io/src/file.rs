//! Files the engine asks for (tokens, the SSO cache, the shared files),
//! read whole up to a limit: none of them is large, and an unbounded read
//! of the wrong path (a device, say) must not take the process's memory.

use std::fs::File;
use std::io::Read;
use std::path::Path;

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
