//! The session the flags describe: an STS role, an IoT certificate, or the
//! default chain on its own.

use std::time::Duration;

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, ConfigError, Error, Pkcs11, Secret};

use crate::args::SessionArgs;
use crate::prompt;

/// Where `REFRESH_SESSION_PKCS11_PIN` is read from when the URI has no PIN:
/// not a flag, so the PIN stays out of `ps`.
const PIN_VARIABLE: &str = "REFRESH_SESSION_PKCS11_PIN";

/// Builds the session: deferred for one-shot commands, eager for `exec`
/// (its background refresh keeps the child from ever waiting).
pub(crate) fn build(args: &SessionArgs, defer_refresh: bool) -> Result<RefreshableSession, Error> {
    let mut builder = method(args)?.defer_refresh(defer_refresh);
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
    builder = builder.serve_expired_on_failure(args.serve_expired_on_failure);
    builder = match (&args.mfa_command, &args.serial_number) {
        (Some(line), _) => builder.mfa_command(shell(line)),
        (None, Some(_)) => builder.mfa_token_provider(prompt::mfa_code),
        (None, None) => builder,
    };
    builder.build()
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
    if let Some(serial) = &args.serial_number {
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
        params = params.pkcs11(pkcs11(uri)?);
    }
    if let Some(ca) = &args.ca {
        params = params.ca_file(ca);
    }
    Ok(params)
}

/// The key the URI names; without `pin-value` in it, the PIN comes from
/// the environment.
fn pkcs11(uri: &str) -> Result<Pkcs11, Error> {
    if uri.contains("pin-value=") {
        return Ok(Pkcs11::from_uri(uri)?);
    }
    let pin = std::env::var(PIN_VARIABLE).map_err(|_| {
        ConfigError::new(
            "pkcs11",
            format!("the URI has no pin-value: set {PIN_VARIABLE} to the token's user PIN"),
        )
    })?;
    let separator = if uri.contains('?') { '&' } else { '?' };
    let with_pin = Secret::new(format!(
        "{uri}{separator}pin-value={}",
        percent_encode(&pin)
    ));
    Ok(Pkcs11::from_uri(with_pin.expose())?)
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `line` run by the shell, as `credential_process` lines are.
fn shell(line: &str) -> [&str; 3] {
    ["sh", "-c", line]
}
