//! The `credential-process` disk cache: one file per session description,
//! holding exactly the `credential_process` JSON the command prints, in a
//! directory only its owner may enter. A file's modification time is when
//! its credentials were fetched: with their expiry, the core's refresh
//! policy says whether they are still fresh.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use refresh_session_blocking::Credentials;
use refresh_session_core::chain::process;
use refresh_session_core::policy::{Freshness, RefreshPolicy};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

/// A cache file is never larger: anything bigger is not ours.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A cache directory.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache in `dir`, else in `$XDG_CACHE_HOME/refresh-session`, else
    /// in `~/.cache/refresh-session`; `None` when there is no home.
    pub(crate) fn new(dir: Option<PathBuf>) -> Option<Self> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = dir
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("refresh-session")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/refresh-session")))?;
        Some(Self { dir })
    }

    /// The file for sessions described by `key`.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        let name = refresh_session_core::hex::encode(&Sha1::digest(key.as_bytes()));
        self.dir.join(format!("{name}.json"))
    }

    /// The cached credentials for `key` if they are fresh at `now` under
    /// `policy`. A missing, unreadable, malformed or stale file, or one
    /// that others may read or write, is no answer: it is fetched again
    /// and replaced.
    pub(crate) fn load(
        &self,
        key: &str,
        policy: &RefreshPolicy,
        now: OffsetDateTime,
    ) -> Option<Credentials> {
        let mut file = File::open(self.path(key)).ok()?;
        let metadata = file.metadata().ok()?;
        if !private(&metadata) || metadata.len() > MAX_FILE_BYTES {
            return None;
        }
        let mut json = Vec::new();
        file.read_to_end(&mut json).ok()?;
        let credentials = process::parse_json(&json).ok()?;
        let fetched_at = OffsetDateTime::from(metadata.modified().ok()?);
        let windows = policy.windows(fetched_at, credentials.expiration()?);
        (windows.freshness(now) == Freshness::Fresh).then_some(credentials)
    }

    /// Stores `credentials` for `key`, fetched just now: written to a new
    /// file then renamed, so a concurrent run reads the old file or the
    /// new one, never half of one. Credentials that never expire are not
    /// written to disk.
    pub(crate) fn store(&self, key: &str, credentials: &Credentials) -> io::Result<()> {
        if credentials.expiration().is_none() {
            return Ok(());
        }
        private_dir(&self.dir)?;
        let path = self.path(key);
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = write_private(&temporary, process::render(credentials).expose().as_bytes())
            .and_then(|()| fs::rename(&temporary, &path));
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }
}

/// Creates `dir` (0700) if needed, and takes group and other access away
/// if it has any.
fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Writes a new file only its owner may read and write (0600).
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Whether only the owner may read or write the file.
fn private(metadata: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.permissions().mode() & 0o077 == 0
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use refresh_session_blocking::Secret;

    use super::*;

    /// Sets when the file was written, as if fetched at `fetched_at`.
    fn age(path: &Path, fetched_at: SystemTime) -> io::Result<()> {
        File::options()
            .write(true)
            .open(path)?
            .set_modified(fetched_at)
    }

    fn policy() -> RefreshPolicy {
        RefreshPolicy::default()
    }

    fn expiring_in(lifetime: Duration) -> Credentials {
        // Whole seconds, as the cache file keeps them.
        let expiration = (OffsetDateTime::now_utc() + lifetime)
            .replace_nanosecond(0)
            .expect("a valid nanosecond");
        Credentials::new(
            "ASIACACHE",
            "cache-secret",
            Some(Secret::new("token")),
            Some(expiration),
        )
    }

    #[test]
    fn fresh_credentials_are_served_until_their_advisory_window() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = DiskCache::new(Some(dir.path().join("cache"))).expect("a dir");
        let now = OffsetDateTime::now_utc();
        assert_eq!(cache.load("role", &policy(), now), None, "empty");

        // 15-minute credentials: advisory five minutes before expiry.
        let credentials = expiring_in(Duration::from_secs(900));
        cache.store("role", &credentials).expect("stored");
        assert_eq!(
            cache.load("role", &policy(), now),
            Some(credentials.clone())
        );
        assert_eq!(cache.load("other role", &policy(), now), None);
        let later = now + Duration::from_secs(610);
        assert_eq!(
            cache.load("role", &policy(), later),
            None,
            "advisory by then"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_0700_the_files_0600_and_others_files_are_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cache");
        fs::create_dir(&root).expect("made");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("opened up");
        let cache = DiskCache::new(Some(root.clone())).expect("a dir");
        cache
            .store("role", &expiring_in(Duration::from_secs(3600)))
            .expect("stored");
        let mode = |path: &Path| fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&cache.path("role")), 0o600);
        assert_eq!(
            fs::read_dir(&root).expect("listed").count(),
            1,
            "no temporaries"
        );

        let now = OffsetDateTime::now_utc();
        assert!(cache.load("role", &policy(), now).is_some());
        fs::set_permissions(cache.path("role"), fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            cache.load("role", &policy(), now),
            None,
            "readable by others"
        );
    }

    #[test]
    fn an_old_or_malformed_file_is_no_answer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = DiskCache::new(Some(dir.path().to_owned())).expect("a dir");
        let now = OffsetDateTime::now_utc();
        // Fetched 50 minutes ago, expiring in 10: mandatory, not fresh.
        cache
            .store("role", &expiring_in(Duration::from_secs(600)))
            .expect("stored");
        age(
            &cache.path("role"),
            SystemTime::now() - Duration::from_secs(3000),
        )
        .expect("aged");
        assert_eq!(cache.load("role", &policy(), now), None);

        fs::remove_file(cache.path("role")).expect("removed");
        write_private(&cache.path("role"), b"{\"Version\": 1").expect("written");
        assert_eq!(cache.load("role", &policy(), now), None);

        let long_term = Credentials::new("AKIA", "secret", None, None);
        cache.store("keys", &long_term).expect("nothing to do");
        assert!(
            !cache.path("keys").exists(),
            "long-term keys stay off the disk"
        );
    }
}
