//! MFA token codes: what a valid one looks like, how one is read out of an
//! authenticator command's output, and how getting one can fail.
//!
//! Error messages describe a bad code's shape ("7 characters"), never the
//! code itself.

use crate::error::HookError;
use crate::secret::Secret;

/// Why no usable MFA token was obtained.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The token provider returned an error.
    #[error("the MFA token provider failed: {0}")]
    Provider(#[source] HookError),
    /// The token provider returned something that is not a token code.
    #[error("the MFA token provider returned {shape}; a token code is exactly six digits")]
    InvalidToken {
        /// What was returned, without revealing it.
        shape: String,
    },
    /// A session built with a static `TokenCode` needs a new code to refresh.
    #[error(
        "the static TokenCode was used by the first AssumeRole and AWS accepts a code only once; set an MFA token provider (closure or command) so refreshes can ask for a new code"
    )]
    StaticTokenSpent,
    /// The MFA command could not be run or printed no code.
    #[error("MFA command `{program}`: {problem}")]
    Command {
        /// The program that was run.
        program: String,
        /// What went wrong.
        problem: String,
    },
}

/// Checks that `code` is exactly six ASCII digits.
pub(crate) fn check_token(code: &str) -> Result<(), MfaError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let chars = code.chars().count();
    let shape = match chars {
        0 => "an empty string".to_owned(),
        6 => "six characters that are not all digits".to_owned(),
        n => format!("{n} characters"),
    };
    Err(MfaError::InvalidToken { shape })
}

/// Trims what a token provider returned and checks it is a six-digit code.
pub fn parse_token(raw: &str) -> Result<Secret, MfaError> {
    let code = raw.trim();
    check_token(code)?;
    Ok(Secret::new(code))
}

/// Finds the token code in an authenticator command's standard output: the
/// last run of exactly six digits, so that `ykman oath accounts code`'s
/// `AWS:me@example.com  123456` works as well as a bare `123456`.
pub fn token_from_command_output(program: &str, stdout: &str) -> Result<Secret, MfaError> {
    stdout
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|run| run.len() == 6)
        .map(Secret::new)
        .ok_or_else(|| MfaError::Command {
            program: program.to_owned(),
            problem: "printed no six-digit code on standard output".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_must_be_six_digits() {
        assert_eq!(parse_token(" 123456\n").expect("valid").expose(), "123456");
        for (bad, shape) in [
            ("", "an empty string"),
            ("12345", "5 characters"),
            ("1234567", "7 characters"),
            ("12345a", "six characters that are not all digits"),
            ("１２３４５６", "six characters that are not all digits"),
        ] {
            match parse_token(bad) {
                Err(MfaError::InvalidToken { shape: got }) => assert_eq!(got, shape, "{bad:?}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn errors_never_contain_the_code() {
        let error = parse_token("1234567").unwrap_err().to_string();
        assert!(!error.contains("1234567"), "{error}");
    }

    #[test]
    fn command_output_yields_the_last_six_digit_run() {
        let read =
            |out: &str| token_from_command_output("ykman", out).map(|s| s.expose().to_owned());
        assert_eq!(read("123456\n").expect("code"), "123456");
        assert_eq!(
            read("AWS:me@example.com  654321\n").expect("code"),
            "654321"
        );
        assert_eq!(
            read("Touch your key\n2026 account 111111\nnext 222222").expect("code"),
            "222222"
        );
        assert_eq!(read("code 1234567 then 000042").expect("code"), "000042");
        assert!(read("no code here 12345").is_err());
        assert!(read("").is_err());
    }
}
