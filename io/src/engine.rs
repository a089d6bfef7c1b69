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

    /// `CLOCK_REALTIME_COARSE`, the time of the last tick, plus two ticks:
    /// an upper bound of the time, read without the time counter (7 ns
    /// instead of 32 ns here).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[inline]
    fn now_coarse(&self) -> SystemTime {
        use rustix::time::{ClockId, clock_gettime};
        static MARGIN: OnceLock<Duration> = OnceLock::new();
        let margin = MARGIN.get_or_init(|| {
            let tick = rustix::time::clock_getres(ClockId::RealtimeCoarse);
            2 * Duration::new(
                u64::try_from(tick.tv_sec).unwrap_or(0),
                u32::try_from(tick.tv_nsec).unwrap_or(0),
            )
        });
        let now = clock_gettime(ClockId::RealtimeCoarse);
        match (u64::try_from(now.tv_sec), u32::try_from(now.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => SystemTime::UNIX_EPOCH + Duration::new(secs, nanos) + *margin,
            // Before 1970: the clock is wrong anyway; ask the precise one.
            _ => SystemTime::now(),
        }
    }
}

/// Builds the engine for `config`, and returns it with the clock its
/// driver must read: the configured one, or the system clock. Reads the
/// shared files, so async drivers call it on a blocking thread.
pub fn new_engine(mut config: SessionConfig) -> Result<(Engine, Arc<dyn Clock>), ConfigError> {
    let clock = config.clock().unwrap_or_else(|| Arc::new(SystemClock));
    let vars = config.environment().cloned();
    let env = move |key: &str| match &vars {
        Some(vars) => vars.get(key).cloned(),
        None => std::env::var(key).ok(),
    };
    let [config_file, credentials_file] = profile::file_paths(&env);
    let read = |path: Option<std::path::PathBuf>| path.map_or(Ok(None), |p| read_profile(&p));
    config.use_profile_files(read(config_file)?, read(credentials_file)?);
    // A fresh RandomState is randomly keyed: a seed without a crate for it.
    let seed = RandomState::new().hash_one(0u8);
    let engine = Engine::new(config, &env, OffsetDateTime::from(clock.now()), seed)?;
    Ok((engine, clock))
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
    fn the_coarse_clock_is_never_behind_and_at_most_a_few_ticks_ahead() {
        let clock = SystemClock;
        for _ in 0..10_000 {
            let precise = clock.now();
            let coarse = clock.now_coarse();
            assert!(coarse >= precise, "{precise:?} read as {coarse:?}");
            let ahead = coarse.duration_since(precise).unwrap_or_default();
            assert!(ahead < Duration::from_millis(100), "{ahead:?} ahead");
        }
    }
}
