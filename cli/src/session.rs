//! The session the flags describe: an STS role, an IoT certificate, or the
//! default chain on its own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, ConfigError, Error, GetSessionToken, Pkcs11, Secret};

use refresh_session_core::command::PKCS11_PIN_VARIABLE;

use crate::args::SessionArgs;
use crate::prompt;

/// Builds the session: deferred for one-shot commands, eager for `exec`
/// (its background refresh keeps the child from ever waiting). With
/// `--mfa-session`, the role is signed by an MFA session of its own.
pub(crate) fn build(args: &SessionArgs, defer_refresh: bool) -> Result<RefreshableSession, Error> {
    let mut builder = with_mfa_codes(options(method(args)?, args), args);
    if let (Some(duration), Some(serial)) = (args.mfa_session, &args.serial_number) {
        builder = builder.mfa_session(serial, duration);
    }
    builder.defer_refresh(defer_refresh).build()
}

/// The `--mfa-session` alone: `GetSessionToken` for `--serial-number`,
/// signed by the default chain's credentials, asking for codes.
pub(crate) fn mfa_session(args: &SessionArgs) -> Result<Option<RefreshableSession>, Error> {
    let (Some(duration), Some(serial)) = (args.mfa_session, &args.serial_number) else {
        return Ok(None);
    };
    let params = GetSessionToken::new(serial).duration(duration);
    let builder = options(RefreshableSession::session_token(params), args);
    with_mfa_codes(builder, args).build().map(Some)
}

/// The role, signed by `mfa_session`'s credentials and asking for no code.
pub(crate) fn signed_by(
    args: &SessionArgs,
    mfa_session: &RefreshableSession,
) -> Result<RefreshableSession, Error> {
    options(method(args)?, args)
        .source_session(mfa_session)
        .build()
}

/// The options every session of these flags has.
fn options(mut builder: Builder, args: &SessionArgs) -> Builder {
    if let Some(region) = &args.region {
        builder = builder.region(region);
    }
    if let Some(url) = &args.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(profile) = &args.profile {
        builder = builder.profile_name(profile);
    }
    if let Some(seconds) = args.advisory_timeout {
        builder = builder.advisory_timeout(Duration::from_secs(seconds));
    }
    if let Some(seconds) = args.mandatory_timeout {
        builder = builder.mandatory_timeout(Duration::from_secs(seconds));
    }
    builder.serve_expired_on_failure(args.serve_expired_on_failure)
}

/// Where MFA codes come from: `--mfa-command`, else the terminal.
fn with_mfa_codes(builder: Builder, args: &SessionArgs) -> Builder {
    match (&args.mfa_command, &args.serial_number) {
        (Some(line), _) => builder.mfa_command(shell(line)),
        (None, Some(_)) => builder.mfa_token_provider(prompt::mfa_code),
        (None, None) => builder,
    }
}

fn method(args: &SessionArgs) -> Result<Builder, Error> {
    if let Some(role_arn) = &args.role_arn {
        return Ok(RefreshableSession::sts(assume_role(args, role_arn)));
    }
    if let Some(endpoint) = &args.iot_endpoint {
        return Ok(RefreshableSession::iot(iot(args, endpoint)?));
    }
    Ok(RefreshableSession::default_chain())
}

fn assume_role(args: &SessionArgs, role_arn: &str) -> AssumeRole {
    let mut params = AssumeRole::new(role_arn);
    if let Some(name) = &args.role_session_name {
        params = params.role_session_name(name);
    }
    if let Some(seconds) = args.duration_seconds {
        params = params.duration(Duration::from_secs(seconds));
    }
    if let Some(id) = &args.external_id {
        params = params.external_id(id);
    }
    // With an MFA session, the code goes to GetSessionToken instead.
    if let (Some(serial), None) = (&args.serial_number, args.mfa_session) {
        params = params.serial_number(serial);
    }
    params
}

fn iot(args: &SessionArgs, endpoint: &str) -> Result<Iot, Error> {
    let (Some(alias), Some(certificate)) = (&args.role_alias, &args.certificate) else {
        return Err(ConfigError::new(
            "iot_endpoint",
            "--iot-endpoint needs --role-alias and --certificate",
        )
        .into());
    };
    let mut params = Iot::new(endpoint, alias).certificate_file(certificate);
    if let Some(name) = &args.thing_name {
        params = params.thing_name(name);
    }
    if let Some(seconds) = args.duration_seconds {
        params = params.duration(Duration::from_secs(seconds));
    }
    if let Some(key) = &args.private_key {
        params = params.private_key_file(key);
    }
    if let Some(uri) = &args.pkcs11 {
        params = params.pkcs11(pkcs11(uri, args.pin_file.as_deref())?);
    }
    if let Some(ca) = &args.ca {
        params = params.ca_file(ca);
    }
    Ok(params)
}

/// The key the URI names, with the PIN from `--pin-file` or else from
/// the environment: never from the command line, where `ps` shows it to
/// every user.
fn pkcs11(uri: &str, pin_file: Option<&Path>) -> Result<Pkcs11, Error> {
    // Checked before the URI is parsed, and without quoting it: clap's
    // errors would print the value, PIN and all.
    if Pkcs11::uri_holds_pin(uri) {
        return Err(ConfigError::new(
            "pkcs11",
            format!(
                "the URI holds pin-value, which every user can read on a command line: take \
                 it out, and put the PIN in {PKCS11_PIN_VARIABLE} or in a file for --pin-file"
            ),
        )
        .into());
    }
    let pin = match pin_file {
        Some(path) => read_pin_file(path)?,
        None => std::env::var(PKCS11_PIN_VARIABLE)
            .map(Secret::new)
            .map_err(|_| {
                ConfigError::new(
                    "pkcs11",
                    format!("no PIN: set {PKCS11_PIN_VARIABLE}, or pass --pin-file"),
                )
            })?,
    };
    Ok(Pkcs11::from_uri_and_pin(uri, pin)?)
}

/// The PIN in `path`: its first line, from a file only its owner may read.
fn read_pin_file(path: &Path) -> Result<Secret, Error> {
    let invalid =
        |problem: String| ConfigError::new("pin_file", format!("{}: {problem}", path.display()));
    let metadata = fs::metadata(path).map_err(|e| invalid(format!("cannot be read: {e}")))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(invalid(format!(
            "others may read it (mode {:o}); run `chmod 600` on it",
            metadata.permissions().mode() & 0o777
        ))
        .into());
    }
    let text =
        Secret::new(fs::read_to_string(path).map_err(|e| invalid(format!("cannot be read: {e}")))?);
    let pin = text.expose().lines().next().unwrap_or_default();
    if pin.is_empty() {
        return Err(invalid("is empty; write the PIN on its first line".into()).into());
    }
    Ok(Secret::new(pin))
}

/// `line` run by the shell, as `credential_process` lines are.
fn shell(line: &str) -> [&str; 3] {
    ["sh", "-c", line]
}
