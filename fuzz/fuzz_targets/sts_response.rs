//! STS answers of any status and body: parsed into credentials or a typed
//! error, never a panic; what parses is complete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::sts::{parse_assume_role, parse_caller_identity};

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() =
        http::StatusCode::from_u16(100 + status % 500).expect("100..600 are status codes");
    if let Ok(assumed) = parse_assume_role(&response) {
        assert!(response.status().is_success());
        assert!(!assumed.credentials.access_key_id().is_empty());
        assert!(!assumed.credentials.secret_access_key().is_empty());
        assert!(assumed.credentials.expiration().is_some());
    }
    if let Ok(identity) = parse_caller_identity(&response) {
        assert!(!identity.arn.is_empty());
    }
});
