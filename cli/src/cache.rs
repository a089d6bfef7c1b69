//! The `credential-process` disk cache: one file per session description,
//! holding exactly the `credential_process` JSON the command prints, in a
//! directory only its owner may enter. A file's modification time is when
//! its credentials were fetched: with their expiry, the core's refresh
//! policy says whether they are still fresh. Runs that miss the cache
//! together take turns on a lock file beside the entry: the first fetches,
//! the others read what it stored, so eight `aws` commands started at once
//! make one STS call and ask for one MFA code.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::{ConfigError, Credentials, Error};
use refresh_session_core::chain::process;
use refresh_session_core::policy::{Freshness, RefreshPolicy};
use ring::digest::{SHA256, digest};
use rustix::fs::{FlockOperation, flock};
use time::OffsetDateTime;

/// A cache file is never larger: anything bigger is not ours.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// How long a run waits for another to fetch the same credentials: time for
/// an MFA command (60 s at most) and STS, with room to spare. Past it, the
/// run fetches on its own.
const LOCK_WAIT: Duration = Duration::from_secs(150);
/// How often a waiting run tries the lock.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// A cache directory, checked to be private to this user.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

/// The lock on one entry, held while its credentials are fetched: released
/// when dropped, or by the kernel if the process dies.
#[derive(Debug)]
pub(crate) struct EntryLock {
    _file: File,
}

impl DiskCache {
    /// The cache in `dir`, else in `$XDG_CACHE_HOME/refresh-session`, else
    /// in `~/.cache/refresh-session`; `None` when there is no home. A
    /// missing directory is created (0700); an existing one must be a
    /// directory owned by the effective user that nobody else may enter,
    /// else it is refused (never changed: `--cache-dir ~` must not make a
    /// home directory private).
    pub(crate) fn open(dir: Option<PathBuf>) -> Result<Option<Self>, ConfigError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let Some(dir) = dir
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("refresh-session")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/refresh-session")))
        else {
            return Ok(None);
        };
        private_dir(&dir).map_err(|problem| {
            ConfigError::new("cache_dir", format!("{}: {problem}", dir.display()))
        })?;
        Ok(Some(Self { dir }))
    }

    /// The file for sessions described by `key`.
    fn path(&self, key: &str, extension: &str) -> PathBuf {
        let name = refresh_session_core::hex::encode(digest(&SHA256, key.as_bytes()).as_ref());
        self.dir.join(format!("{name}.{extension}"))
    }

    /// The cached credentials for `key` if they are fresh at `now` under
    /// `policy`. A missing, unreadable, malformed or stale file, or one
    /// that is not this user's alone, is no answer: it is fetched again
    /// and replaced.
    fn load(&self, key: &str, policy: &RefreshPolicy, now: OffsetDateTime) -> Option<Credentials> {
        let mut file = File::open(self.path(key, "json")).ok()?;
        let metadata = file.metadata().ok()?;
        if !owned_privately(&metadata) || metadata.len() > MAX_FILE_BYTES {
            return None;
        }
        let mut json = Vec::new();
        file.read_to_end(&mut json).ok()?;
        let credentials = process::parse_json(&json).ok()?;
        let fetched_at = OffsetDateTime::from(metadata.modified().ok()?);
        let windows = policy.windows(fetched_at, credentials.expiration()?);
        (windows.freshness(now) == Freshness::Fresh).then_some(credentials)
    }

    /// Takes the lock on `key`'s entry (a `.lock` file beside it), waiting
    /// while another run holds it, up to [`LOCK_WAIT`]; `None` past that.
    fn lock(&self, key: &str) -> io::Result<Option<EntryLock>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.path(key, "lock"))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Some(EntryLock { _file: file })),
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => {}
                Err(error) => return Err(error.into()),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(LOCK_POLL);
        }
    }

    /// `key`'s credentials from the cache while they are fresh under
    /// `policy`; else from `fetch`, stored. Runs that miss at once take
    /// turns on the entry's lock, and those that waited read what the first
    /// stored. `what` names the credentials in the status lines.
    pub(crate) fn through(
        &self,
        key: &str,
        policy: &RefreshPolicy,
        what: &str,
        fetch: impl FnOnce() -> Result<Credentials, Error>,
    ) -> Result<Credentials, Error> {
        let cached = || self.load(key, policy, OffsetDateTime::now_utc());
        if let Some(credentials) = cached() {
            eprintln!("refresh-session: {what} from the cache");
            return Ok(credentials);
        }
        let _turn = match self.lock(key) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => {
                eprintln!("refresh-session: warning: another run holds the cache entry; fetching");
                None
            }
            Err(error) => {
                eprintln!("refresh-session: warning: the cache entry cannot be locked: {error}");
                None
            }
        };
        if let Some(credentials) = cached() {
            eprintln!("refresh-session: {what} from the cache, fetched by another run");
            return Ok(credentials);
        }
        let credentials = fetch()?;
        self.replace(key, &credentials, what);
        Ok(credentials)
    }

    /// Drops `key`'s entry: its credentials were refused.
    pub(crate) fn forget(&self, key: &str) {
        let _ = fs::remove_file(self.path(key, "json"));
    }

    /// Stores `credentials` for `key`; a failure is a warning: they are
    /// good, just not cached.
    pub(crate) fn replace(&self, key: &str, credentials: &Credentials, what: &str) {
        if let Err(error) = self.store(key, credentials) {
            eprintln!("refresh-session: warning: {what} not cached: {error}");
        }
    }

    /// Stores `credentials` for `key`, fetched just now: written to a new
    /// file then renamed, so a concurrent run reads the old file or the
    /// new one, never half of one. Credentials that never expire are not
    /// written to disk.
    fn store(&self, key: &str, credentials: &Credentials) -> io::Result<()> {
        if credentials.expiration().is_none() {
            return Ok(());
        }
        let contents = process::render(credentials);
        refresh_session_io::file::replace(self.path(key, "json"), contents.expose().as_bytes())
    }
}

/// Creates `dir` (0700) if needed; an existing one must be private to
/// this user. The error says what to fix.
fn private_dir(dir: &Path) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot be created: {e}")),
        Err(error) => Err(format!("cannot be read: {error}")),
        Ok(metadata) if !metadata.is_dir() => {
            Err("is not a directory; pass --cache-dir a directory of its own".into())
        }
        Ok(metadata) if metadata.uid() != rustix::process::geteuid().as_raw() => Err(format!(
            "belongs to user {}, not to you ({}); pass --cache-dir a directory of your own",
            metadata.uid(),
            rustix::process::geteuid().as_raw()
        )),
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => Err(format!(
            "others may enter it (mode {:o}); run `chmod 700` on it, or pass --cache-dir \
             a directory only you can enter",
            metadata.permissions().mode() & 0o7777
        )),
        Ok(_) => Ok(()),
    }
}

/// Whether the file is this user's, and only this user may read or write
/// it.
fn owned_privately(metadata: &fs::Metadata) -> bool {
    metadata.uid() == rustix::process::geteuid().as_raw()
        && metadata.permissions().mode() & 0o077 == 0
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

    /// A new cache in `dir`, which must be accepted.
    fn private_cache(dir: &Path) -> DiskCache {
        DiskCache::open(Some(dir.to_owned()))
            .expect("private")
            .expect("a dir")
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
        let cache = private_cache(&dir.path().join("cache"));
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

    #[test]
    fn the_directory_is_made_0700_the_files_0600_and_others_files_are_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cache");
        let cache = private_cache(&root);
        cache
            .store("role", &expiring_in(Duration::from_secs(3600)))
            .expect("stored");
        let mode = |path: &Path| fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&cache.path("role", "json")), 0o600);
        assert_eq!(
            fs::read_dir(&root).expect("listed").count(),
            1,
            "no temporaries"
        );

        let now = OffsetDateTime::now_utc();
        assert!(cache.load("role", &policy(), now).is_some());
        fs::set_permissions(
            cache.path("role", "json"),
            fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        assert_eq!(
            cache.load("role", &policy(), now),
            None,
            "readable by others"
        );
    }

    #[test]
    fn a_directory_others_may_enter_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("shared");
        fs::create_dir(&root).expect("made");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("opened up");
        let error = DiskCache::open(Some(root.clone())).expect_err("refused");
        assert!(error.to_string().contains("chmod 700"), "{error}");
        assert_eq!(
            fs::metadata(&root).expect("there").permissions().mode() & 0o777,
            0o755,
            "not changed"
        );
        let file = dir.path().join("file");
        fs::write(&file, "").expect("written");
        let error = DiskCache::open(Some(file)).expect_err("refused");
        assert!(error.to_string().contains("not a directory"), "{error}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        // Root may own a directory as anyone; others cannot make one that
        // is not theirs, so the case needs root (CI runs as root).
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("skipped: needs root to make another user's directory");
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("theirs");
        fs::create_dir(&root).expect("made");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("private");
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).expect("chowned");
        let error = DiskCache::open(Some(root)).expect_err("refused");
        assert!(
            error.to_string().contains("belongs to user 65534"),
            "{error}"
        );
    }

    #[test]
    fn the_lock_is_taken_in_turn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = private_cache(&dir.path().join("cache"));
        let first = cache.lock("role").expect("locked").expect("at once");
        let (sender, taken) = std::sync::mpsc::channel();
        thread::scope(|scope| {
            scope.spawn(|| {
                let second = cache.lock("role").expect("locked").expect("in time");
                sender.send(()).expect("sent");
                drop(second);
            });
            assert!(
                taken.recv_timeout(Duration::from_millis(300)).is_err(),
                "held by the first"
            );
            drop(first);
            taken
                .recv_timeout(Duration::from_secs(10))
                .expect("taken once released");
        });
        assert!(cache.lock("other").expect("locked").is_some(), "per entry");
    }

    #[test]
    fn an_old_or_malformed_file_is_no_answer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = private_cache(&dir.path().join("cache"));
        let now = OffsetDateTime::now_utc();
        // Fetched 50 minutes ago, expiring in 10: mandatory, not fresh.
        cache
            .store("role", &expiring_in(Duration::from_secs(600)))
            .expect("stored");
        age(
            &cache.path("role", "json"),
            SystemTime::now() - Duration::from_secs(3000),
        )
        .expect("aged");
        assert_eq!(cache.load("role", &policy(), now), None);

        fs::remove_file(cache.path("role", "json")).expect("removed");
        refresh_session_io::file::replace(cache.path("role", "json"), b"{\"Version\": 1")
            .expect("written");
        assert_eq!(cache.load("role", &policy(), now), None);

        let long_term = Credentials::new("AKIA", "secret", None, None);
        cache.store("keys", &long_term).expect("nothing to do");
        assert!(
            !cache.path("keys", "json").exists(),
            "long-term keys stay off the disk"
        );
    }
}
