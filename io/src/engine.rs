//! An engine for a session about to be driven: its configuration checked
//! against this process's environment variables, at the time of the
//! session's clock, with a random jitter seed.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use refresh_session_core::engine::Engine;
use refresh_session_core::{Clock, ConfigError, SessionConfig};
use time::OffsetDateTime;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Builds the engine for `config`, and returns it with the clock its
/// driver must read: the configured one, or the system clock.
pub fn new_engine(config: SessionConfig) -> Result<(Engine, Arc<dyn Clock>), ConfigError> {
    let clock = config.clock().unwrap_or_else(|| Arc::new(SystemClock));
    let env = |key: &str| std::env::var(key).ok();
    // A fresh RandomState is randomly keyed: a seed without a crate for it.
    let seed = RandomState::new().hash_one(0u8);
    let engine = Engine::new(config, &env, OffsetDateTime::from(clock.now()), seed)?;
    Ok((engine, clock))
}
