//! `credential_process` output of any content and exit status: credentials
//! or a typed error, never a panic, never the output's secret in the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::chain::process::parse;
use refresh_session_core::command::CommandOutput;

fuzz_target!(|input: (Option<i32>, &[u8], &[u8])| {
    let (status, stdout, stderr) = input;
    let output = CommandOutput {
        status,
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
    };
    match parse(&output) {
        Ok(credentials) => {
            assert_eq!(status, Some(0));
            assert!(!credentials.access_key_id().is_empty());
            assert!(!credentials.secret_access_key().expose().is_empty());
        }
        Err(error) => {
            // A key-shaped secret (a run no message text has) that standard
            // error, which errors quote, does not repeat.
            let secret = credentials_secret(stdout).filter(|s| {
                s.len() >= 20
                    && s.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !String::from_utf8_lossy(stderr).contains(s.as_str())
            });
            if let Some(secret) = secret {
                assert!(!error.to_string().contains(&secret), "{error}");
            }
        }
    }
});

/// The SecretAccessKey the output holds, if it is JSON with one.
fn credentials_secret(stdout: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    value.get("SecretAccessKey")?.as_str().map(str::to_owned)
}
