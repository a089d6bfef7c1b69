//! An engine for a session about to be driven: its configuration checked
//! against the environment (the process's, or the one the session sets)
//! and the shared `config` and `credentials` files, at the time of the
//! session's clock, with a random jitter seed.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use refresh_session_core::engine::Engine;
use refresh_session_core::profile::{self, ProfileFile};
use refresh_session_core::resolved::ResolvedSession;
use refresh_session_core::{Clock, ConfigError, SessionConfig};
use time::OffsetDateTime;

use crate::file;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// `CLOCK_REALTIME_COARSE`: the time of the last tick, read without
    /// the time counter (7 ns instead of 32 ns here).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn now_coarse_secs(&self) -> u64 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        // Before 1970 reads as the epoch, which is not behind it.
        u64::try_from(now.tv_sec).unwrap_or(0)
    }

    /// Two ticks of the coarse clock (its resolution, as the kernel
    /// reports it).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn coarse_lag(&self) -> Duration {
        static LAG: OnceLock<Duration> = OnceLock::new();
        *LAG.get_or_init(|| {
            let tick = rustix::time::clock_getres(rustix::time::ClockId::RealtimeCoarse);
            2 * Duration::new(
                u64::try_from(tick.tv_sec).unwrap_or(0),
                u32::try_from(tick.tv_nsec).unwrap_or(0),
            )
        })
    }
}

/// A session's engine, what its driver needs to know of it besides, and
/// the clock to read.
pub struct NewEngine {
    /// The engine.
    pub engine: Engine,
    /// The session's resolved configuration.
    pub session: ResolvedSession,
    /// The configured clock, or the system clock.
    pub clock: Arc<dyn Clock>,
}

/// Builds the engine for `config` (see [`NewEngine`]). Reads the shared
/// files, so async drivers call it on a blocking thread.
pub fn new_engine(mut config: SessionConfig) -> Result<NewEngine, ConfigError> {
    let clock = config.clock().unwrap_or_else(|| Arc::new(SystemClock));
    let vars = config.environment().cloned();
    let env = move |key: &str| match &vars {
        Some(vars) => vars.get(key).cloned(),
        None => std::env::var(key).ok(),
    };
    let [config_file, credentials_file] = profile_files(&env)?;
    config.use_profile_files(config_file, credentials_file);
    // A fresh RandomState is randomly keyed: a seed without a crate for it.
    let seed = RandomState::new().hash_one(0u8);
    let (engine, session) = Engine::new(config, &env, OffsetDateTime::from(clock.now()), seed)?;
    Ok(NewEngine {
        engine,
        session,
        clock,
    })
}

/// The shared `config` and `credentials` files where `env` places them
/// (`None` for a file that does not exist).
pub fn profile_files(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<[Option<ProfileFile>; 2], ConfigError> {
    let read = |path: Option<std::path::PathBuf>| path.map_or(Ok(None), |p| read_profile(&p));
    let [config_file, credentials_file] = profile::file_paths(env);
    Ok([read(config_file)?, read(credentials_file)?])
}

/// A shared file's content; `None` if it does not exist.
fn read_profile(path: &Path) -> Result<Option<ProfileFile>, ConfigError> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = file::read(path)
        .map_err(|e| ConfigError::new("profile_file", format!("{shown} could not be read: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ConfigError::new("profile_file", format!("{shown} is not UTF-8 text")))?;
    Ok(Some(ProfileFile { path: shown, text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_behind_by_at_most_its_lag() {
        let clock = SystemClock;
        assert!(clock.coarse_lag() < Duration::from_millis(100));
        let secs = |time: SystemTime| {
            time.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        };
        for _ in 0..10_000 {
            let before = clock.now();
            let coarse = clock.now_coarse_secs();
            let after = clock.now();
            assert!(
                coarse >= secs(before - clock.coarse_lag()),
                "behind by more than the lag"
            );
            assert!(coarse <= secs(after), "ahead of the clock");
        }
    }
}
