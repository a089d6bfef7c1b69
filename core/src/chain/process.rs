//! `credential_process`: a command that prints credentials as JSON
//! (`{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
//! "Expiration"}`), run through the shell as the AWS SDKs run it.

use std::time::Duration;

use serde::Deserialize;

use crate::command::{CommandOutput, CommandSpec};
use crate::credentials::Credentials;
use crate::error::Error;
use crate::json;
use crate::secret::Secret;

use super::{ChainError, SourceKind};

/// How long the command may run: it may ask the user for something.
const TIMEOUT: Duration = Duration::from_secs(120);
/// How much of its standard error an error message quotes.
const STDERR_QUOTED: usize = 512;
/// How errors name the source.
const SERVICE: &str = "credential_process";

/// The command line `line` run by the shell, as the AWS SDKs run it.
pub(crate) fn command(line: &str) -> CommandSpec {
    let (shell, flag) = if cfg!(windows) {
        ("cmd.exe", "/C")
    } else {
        ("sh", "-c")
    };
    CommandSpec {
        program: shell.into(),
        args: vec![flag.into(), line.into()],
        timeout: TIMEOUT,
        interactive: false,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
}

/// The credentials the command printed.
pub fn parse(output: &CommandOutput) -> Result<Credentials, Error> {
    if output.status != Some(0) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let quoted: String = stderr.chars().take(STDERR_QUOTED).collect();
        let exit = match output.status {
            Some(code) => format!("exited with code {code}"),
            None => "was ended by a signal".into(),
        };
        return Err(failed(if quoted.is_empty() {
            exit
        } else {
            format!("{exit}: {quoted}")
        }));
    }
    parse_json(&output.stdout)
}

/// Credentials from `credential_process` JSON (Version 1).
pub fn parse_json(json: &[u8]) -> Result<Credentials, Error> {
    let answer = json::Answer {
        service: SERVICE,
        status: 200,
        body: json,
    };
    let printed: Output = answer.decode("credential_process JSON (Version 1)")?;
    if printed.version != 1 {
        return Err(answer.invalid(format!(
            "Version is {}; only Version 1 exists",
            printed.version
        )));
    }
    answer.require(&[
        ("AccessKeyId", &printed.access_key_id),
        ("SecretAccessKey", &printed.secret_access_key),
    ])?;
    let expiration = printed
        .expiration
        .map(|text| answer.timestamp("Expiration", &text))
        .transpose()?;
    Ok(Credentials::new(
        printed.access_key_id,
        Secret::new(printed.secret_access_key),
        printed
            .session_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expiration,
    ))
}

/// `credentials` as `credential_process` JSON (Version 1), what a command
/// named in a profile's `credential_process` prints. A secret: it holds
/// the secret key.
pub fn render(credentials: &Credentials) -> Secret {
    let mut json = serde_json::json!({
        "Version": 1,
        "AccessKeyId": credentials.access_key_id(),
        "SecretAccessKey": credentials.secret_access_key().expose(),
    });
    if let Some(token) = credentials.session_token() {
        json["SessionToken"] = token.expose().into();
    }
    if let Some(expiration) = credentials.expiration() {
        json["Expiration"] = json::timestamp(expiration).into();
    }
    Secret::new(json.to_string())
}

fn failed(problem: String) -> Error {
    Error::Chain(ChainError::Failed {
        kind: SourceKind::Process,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(status: i32, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            status: Some(status),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rendered_credentials_parse_back_unchanged() {
        let at = time::macros::datetime!(2026-11-22 12:00:00.75 UTC);
        let with_token = Credentials::new("ASIA1", "secret", Some(Secret::new("token")), Some(at));
        let parsed = parse_json(render(&with_token).expose().as_bytes()).expect("valid");
        assert_eq!(parsed.access_key_id(), "ASIA1");
        assert_eq!(parsed.secret_access_key().expose(), "secret");
        assert_eq!(parsed.session_token().map(Secret::expose), Some("token"));
        // Whole seconds, as the AWS SDKs write them.
        assert_eq!(
            parsed.expiration(),
            Some(at.replace_nanosecond(0).expect("valid"))
        );
        assert!(
            render(&with_token)
                .expose()
                .contains(r#""Expiration":"2026-11-22T12:00:00Z""#)
        );

        let long_term = Credentials::new("AKIA1", "secret", None, None);
        assert_eq!(
            parse_json(render(&long_term).expose().as_bytes()).expect("valid"),
            long_term
        );
        assert_eq!(
            format!("{:?}", render(&long_term)),
            format!("{:?}", Secret::new("x"))
        );
    }

    #[test]
    fn reads_version_1_with_and_without_expiry() {
        let credentials = parse(&output(
            0,
            r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z","Extra":true}"#,
            "",
        ))
        .expect("valid");
        assert_eq!(credentials.access_key_id(), "AKID");
        assert!(credentials.expiration().is_some());
        let credentials = parse(&output(
            0,
            r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
            "",
        ))
        .expect("valid");
        assert!(credentials.session_token().is_none());
        assert!(credentials.expiration().is_none(), "never expires");
    }

    #[test]
    fn bad_output_is_a_typed_error_without_the_secret() {
        let cases = [
            (
                output(2, "", "profile not found\n"),
                "exited with code 2: profile not found",
            ),
            (
                output(0, "not json wJalrSECRET", ""),
                "not credential_process JSON",
            ),
            (
                output(
                    0,
                    r#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"wJalrSECRET"}"#,
                    "",
                ),
                "Version is 2",
            ),
            (
                output(
                    0,
                    r#"{"Version":1,"AccessKeyId":"","SecretAccessKey":"wJalrSECRET"}"#,
                    "",
                ),
                "AccessKeyId is empty",
            ),
            (
                output(
                    0,
                    r#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"wJalrSECRET","Expiration":"soon"}"#,
                    "",
                ),
                "Expiration `soon`",
            ),
        ];
        for (output, expected) in cases {
            let error = parse(&output).expect_err(expected).to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("wJalrSECRET"), "{error}");
        }
    }

    #[test]
    fn the_command_line_goes_to_the_shell() {
        let spec = command("aws-vault export --format=json dev");
        assert_eq!(spec.program, "sh");
        assert_eq!(spec.args, ["-c", "aws-vault export --format=json dev"]);
        assert!(!spec.interactive);
    }
}
