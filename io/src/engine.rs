//! An engine for a session about to be driven: its configuration checked
//! against this process's environment variables, at the wall-clock time,
//! with a random jitter seed.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::SystemTime;

use refresh_session_core::engine::Engine;
use refresh_session_core::{ConfigError, SessionConfig};
use time::OffsetDateTime;

/// Builds the engine for `config`.
pub fn new_engine(config: SessionConfig) -> Result<Engine, ConfigError> {
    let env = |key: &str| std::env::var(key).ok();
    // A fresh RandomState is randomly keyed: a seed without a crate for it.
    let seed = RandomState::new().hash_one(0u8);
    Engine::new(config, &env, now(), seed)
}

/// The wall clock, as the engine takes it.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from(SystemTime::now())
}
