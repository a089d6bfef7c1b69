//! An eager session's background thread stops when the last handle drops.
//! Alone in its test binary so that no other test's threads are counted.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_blocking::prelude::*;
use time::OffsetDateTime;

/// Threads of this process named like the session's threads.
fn refresh_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("Linux /proc")
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "refresh-session")
        .count()
}

fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_background_thread_lives_as_long_as_the_last_handle() {
    assert_eq!(refresh_threads(), 0);
    let session = RefreshableSession::custom(|| {
        Ok(CustomCredentials::new()
            .access_key_id("AKID")
            .secret_access_key("secret")
            .expiration(OffsetDateTime::now_utc() + time::Duration::hours(1)))
    })
    .defer_refresh(false)
    .build()
    .expect("the first fetch succeeds");
    assert_eq!(refresh_threads(), 1);
    let clone = session.clone();
    drop(session);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(refresh_threads(), 1, "a clone still holds the session");
    clone.credentials().expect("still serving");
    drop(clone);
    eventually("the background thread stopping", || refresh_threads() == 0);
}
