//! Whatever a custom provider returns, through the engine: credentials
//! valid at the time, or a typed error; never a panic, never an expired
//! credential.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::SessionConfig;
use refresh_session_core::custom::CustomCredentials;
use refresh_session_core::engine::{Access, Engine, Input};
use time::macros::datetime;

fuzz_target!(|fields: Vec<(&str, &str)>| {
    let now = datetime!(2030-01-01 0:00 UTC);
    let Ok(result) = CustomCredentials::from_fields(fields.iter().copied()) else {
        return;
    };
    let mut engine = Engine::new(SessionConfig::custom(), &|_| None, now, 0)
        .expect("valid")
        .0;
    let Access::Pending(fetch) = engine.poll_access(now, None) else {
        panic!("a new session has nothing cached");
    };
    engine.handle_input(
        now,
        Input::Provided {
            fetch,
            result: Ok(result),
        },
    );
    if let Access::Ready(credentials) = engine.poll_access(now, Some(fetch)) {
        assert!(credentials.expiration().is_some_and(|at| at > now));
        assert!(!credentials.access_key_id().is_empty());
    }
});
