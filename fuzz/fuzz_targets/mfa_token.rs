//! MFA codes from providers and commands: six digits, or a typed error that
//! carries only the input's shape (its length), never the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refresh_session_core::mfa::{MfaError, parse_token, token_from_command_output};

fuzz_target!(|text: &str| {
    match parse_token(text) {
        Ok(code) => {
            assert_eq!(code.expose().len(), 6);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        Err(MfaError::InvalidToken { shape }) => {
            let length = format!("{} characters", text.trim().chars().count());
            assert!(
                shape == "an empty string"
                    || shape == "six characters that are not all digits"
                    || shape == length,
                "the error says more than the shape: {shape}"
            );
        }
        Err(other) => panic!("a token check fails only with InvalidToken: {other}"),
    }
    if let Ok(code) = token_from_command_output("mfa", text) {
        assert_eq!(code.expose().len(), 6);
        assert!(text.contains(code.expose()));
    }
});
