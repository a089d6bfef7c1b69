//! Shared `config` and `credentials` files of any content, and any profile
//! name, through a session's build: a session, or a typed error (a file
//! error names a line of that file); never a panic, never a secret in the
//! error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::engine::Engine;
use refresh_session_core::profile::ProfileFile;
use refresh_session_core::{SessionConfig, SessionOptions};
use time::macros::datetime;

const SECRET: &str = "wJalrXUtnFEMIfuzzSECRET";

fuzz_target!(|input: (&str, &str, &str)| {
    let (config, credentials, profile) = input;
    // A secret in a credentials file must never reach an error.
    let credentials = format!("{credentials}\naws_secret_access_key = {SECRET}\n");
    let file = |path: &str, text: &str| ProfileFile {
        path: path.to_owned(),
        text: text.to_owned(),
    };
    let mut session = SessionConfig::default_chain();
    if !profile.is_empty() {
        session = session.profile_name(profile);
    }
    session.use_profile_files(
        Some(file("config", config)),
        Some(file("credentials", &credentials)),
    );
    let env = |key: &str| match key {
        "HOME" => Some("/home/fuzz".to_owned()),
        "AWS_EC2_METADATA_DISABLED" => Some("true".to_owned()),
        _ => None,
    };
    if let Err(error) = Engine::new(session, &env, datetime!(2026-11-22 12:00 UTC), 1) {
        assert!(!error.to_string().contains(SECRET), "{error}");
        if let Some(file_error) = error.profile_file() {
            let text = if file_error.file == "config" {
                config
            } else {
                credentials.as_str()
            };
            assert!(
                (1..=text.lines().count()).contains(&file_error.line),
                "{file_error}"
            );
        }
    }
});
