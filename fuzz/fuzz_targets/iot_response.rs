//! IoT credential-provider answers of any status and body: credentials or
//! a typed error, never a panic; what parses is complete.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::iot::parse_credentials;

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() =
        http::StatusCode::from_u16(100 + status % 500).expect("100..600 are status codes");
    if let Ok(credentials) = parse_credentials(&response) {
        assert!(response.status().is_success());
        assert!(!credentials.access_key_id().is_empty());
        assert!(!credentials.secret_access_key().is_empty());
        assert!(credentials.session_token().is_some());
        assert!(credentials.expiration().is_some());
    }
});
