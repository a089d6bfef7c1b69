//! `refresh-session`: AWS temporary credentials that never go stale, for
//! any program. `credential-process` for a profile's `credential_process`,
//! `exec` to run a command behind a loopback credential endpoint, `whoami`
//! and `env`. Built on the blocking `RefreshableSession`; statuses and
//! errors go to standard error, credentials only to standard output and
//! only where asked for.

mod args;
mod cache;
mod endpoint;
mod exec;
mod mfa_session;
mod prompt;
mod session;
mod shadowing;
mod sso;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use refresh_session_blocking::{Credentials, Error};
use refresh_session_core::chain::process;
use refresh_session_core::fingerprint::Fingerprint;
use refresh_session_core::policy::RefreshPolicy;

use crate::args::{CacheArgs, Cli, Command, Output, SessionArgs, SsoCommand};
use crate::cache::DiskCache;

/// Exit code: credentials could not be had.
const FAILED: u8 = 1;
/// Exit code: bad usage or configuration (clap uses it too).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::CredentialProcess(cache) => credential_process(&cli.session, cache),
        Command::Exec {
            fail_if_shadowed,
            command,
        } => session::build(&cli.session, false).map(|session| {
            let on_shadowing = match fail_if_shadowed {
                true => exec::OnShadowing::Fail,
                false => exec::OnShadowing::Warn,
            };
            exec::run(session, cli.session.region.clone(), command, on_shadowing)
        }),
        Command::ExecChild { parent, command } => Ok(exec::become_child(*parent, command)),
        Command::Whoami(output) => whoami(&cli.session, output),
        Command::Sso(SsoCommand::Login {
            sso_session,
            browser,
        }) => sso::login(&cli.session, sso_session.as_deref(), *browser),
        Command::Env(output) => env(&cli.session, output),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(FAILED)),
        Err(error) => {
            eprintln!("refresh-session: error: {}", printable(&error.to_string()));
            ExitCode::from(match error {
                Error::Config(_) => USAGE,
                _ => FAILED,
            })
        }
    }
}

/// `text` with its control characters escaped: an error can quote a
/// service's message, which must not drive the terminal it is printed on.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Prints `credential_process` JSON, from the disk cache while it is
/// fresh; on a miss, one run at a time fetches for the same entry, and
/// those that waited read what it stored. With `--mfa-session`, the MFA
/// session is cached the same way, beside the roles it signs for.
fn credential_process(args: &SessionArgs, cache: &CacheArgs) -> Result<i32, Error> {
    let policy = RefreshPolicy::new(
        args.advisory_timeout.map(Duration::from_secs),
        args.mandatory_timeout.map(Duration::from_secs),
    )?;
    let disk = match cache.no_cache {
        true => None,
        false => DiskCache::open(cache.cache_dir.clone())?.map(Arc::new),
    };
    let Some(disk) = disk else {
        return print_process_json(&*session::build(args, true)?.credentials()?);
    };
    let mfa = mfa_session::cached(args, &disk)?;
    let session = match &mfa {
        Some(mfa) => session::signed_by(args, &mfa.source)?,
        None => session::build(args, true)?,
    };
    let mut fingerprints = vec![session.fingerprint()];
    fingerprints.extend(mfa.as_ref().map(|mfa| mfa.fingerprint));
    let key = cache_key(args, &fingerprints);
    let credentials = disk.through(&key, &policy, "credentials", || {
        let fetched = session.credentials();
        if let (Err(error), Some(mfa)) = (&fetched, &mfa) {
            mfa.forget_if_refused(&disk, error);
        }
        fetched.map(|c| (*c).clone())
    })?;
    print_process_json(&credentials)
}

fn print_process_json(credentials: &Credentials) -> Result<i32, Error> {
    println!("{}", process::render(credentials).expose());
    Ok(0)
}

/// What sessions the same cache entry may serve: the flags that describe
/// the session, and its fingerprint (every variable its resolution read,
/// set or not, and the shared files' contents), so that two runs share an
/// entry only when they would get the same credentials.
fn cache_key(args: &SessionArgs, fingerprints: &[Fingerprint]) -> String {
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let fingerprints: Vec<String> = fingerprints
        .iter()
        .map(|f| refresh_session_core::hex::encode(f.as_bytes()))
        .collect();
    serde_json::json!({
        "role_arn": args.role_arn,
        "role_session_name": args.role_session_name,
        "duration_seconds": args.duration_seconds,
        "external_id": args.external_id,
        "serial_number": args.serial_number,
        "mfa_session": args.mfa_session.map(|d| d.as_secs()),
        "region": args.region,
        "endpoint_url": args.endpoint_url,
        "profile": args.profile,
        "iot_endpoint": args.iot_endpoint,
        "role_alias": args.role_alias,
        "thing_name": args.thing_name,
        "certificate": path(&args.certificate),
        "pkcs11": args.pkcs11,
        "fingerprints": fingerprints,
    })
    .to_string()
}

fn whoami(args: &SessionArgs, output: &Output) -> Result<i32, Error> {
    let identity = session::build(args, true)?.whoami()?;
    if output.json {
        let json = serde_json::json!({
            "UserId": identity.user_id,
            "Account": identity.account,
            "Arn": identity.arn,
        });
        println!("{json}");
    } else {
        println!("{}", identity.arn);
    }
    Ok(0)
}

/// Prints the credentials for a shell, or as `credential_process` JSON.
fn env(args: &SessionArgs, output: &Output) -> Result<i32, Error> {
    let credentials = session::build(args, true)?.credentials()?;
    if output.json {
        println!("{}", process::render(&credentials).expose());
    } else {
        print!("{}", exports(&credentials));
    }
    Ok(0)
}

/// `export` lines, the values single-quoted for a POSIX shell.
fn exports(credentials: &Credentials) -> String {
    let quote = |value: &str| format!("'{}'", value.replace('\'', r"'\''"));
    let mut lines = format!(
        "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n",
        quote(credentials.access_key_id()),
        quote(credentials.secret_access_key().expose()),
    );
    match credentials.session_token() {
        Some(token) => lines += &format!("export AWS_SESSION_TOKEN={}\n", quote(token.expose())),
        None => lines += "unset AWS_SESSION_TOKEN\n",
    }
    if let Some(text) = credentials.expiration_text() {
        lines += &format!("export AWS_CREDENTIAL_EXPIRATION={}\n", quote(&text));
    }
    lines
}

#[cfg(test)]
mod tests {
    use refresh_session_blocking::Secret;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn exports_write_the_expiry_in_whole_seconds() {
        let credentials = Credentials::new(
            "ASIAEXPORT",
            "it's secret",
            Some(Secret::new("token")),
            Some(datetime!(2026-12-04 12:00:00.75 UTC)),
        );
        let lines = exports(&credentials);
        assert!(
            lines.contains("export AWS_CREDENTIAL_EXPIRATION='2026-12-04T12:00:00Z'\n"),
            "{lines}"
        );
        assert!(lines.contains(r"'it'\''s secret'"), "{lines}");
    }

    #[test]
    fn control_characters_are_escaped_before_the_terminal() {
        let message = "AccessDenied: \u{1b}]0;pwned\u{7}\u{1b}[2J\r\nnot you";
        let shown = printable(message);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(
            shown.starts_with("AccessDenied: \\u{1b}]0;pwned"),
            "{shown}"
        );
        assert_eq!(printable("plain text: é ✓"), "plain text: é ✓");
    }
}
