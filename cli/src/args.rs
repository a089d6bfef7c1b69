//! The command line: subcommands and the session options they share, named
//! after the AWS CLI's flags where it has one.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// AWS temporary credentials that never go stale, for any program.
///
/// Credentials come from an STS role (--role-arn, optionally with MFA),
/// from an AWS IoT X.509 certificate (--iot-endpoint), or else straight
/// from the default chain (environment, web identity, --profile, container,
/// IMDS), which also signs the STS calls.
///
/// Exit codes: 0 success; 1 no credentials (AWS refused, network, provider);
/// 2 usage or configuration error; `exec` exits with its command's code
/// (128+N if a signal N ended it, 126 if it cannot run, 127 if not found).
#[derive(Debug, Parser)]
#[command(name = "refresh-session", version)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Where the credentials come from.
    #[command(flatten)]
    pub(crate) session: SessionArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print credential_process JSON (Version 1), for `credential_process =
    /// refresh-session credential-process ...` in ~/.aws/config.
    ///
    /// Credentials are cached on disk (a 0700 directory of your own, 0600
    /// files) and reused until their advisory window: repeated runs
    /// neither call AWS nor ask for an MFA code again, and runs that miss
    /// at once take turns, so that one of them calls AWS.
    CredentialProcess(CacheArgs),
    /// Run a command with credentials that refresh while it runs.
    ///
    /// The command gets AWS_CONTAINER_CREDENTIALS_FULL_URI and
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN: a credential endpoint on
    /// 127.0.0.1, served for the command's lifetime, refusing requests
    /// without the per-run random token. Every AWS SDK reads it and
    /// refreshes from it; the session refreshes in the background, so the
    /// command never waits.
    ///
    /// Signals sent to refresh-session (INT, TERM, HUP, QUIT, USR1, USR2,
    /// WINCH) are passed on to the command, refresh-session exits with its
    /// status, and on Linux the command gets SIGTERM if refresh-session
    /// dies, even of SIGKILL. Credential variables inherited from this
    /// shell (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) are removed so that they
    /// do not take precedence.
    Exec {
        /// Fail, instead of warning, when the command's own default
        /// profile has credentials (keys, credential_process, a role, SSO),
        /// which AWS SDKs use before the endpoint.
        #[arg(long)]
        fail_if_shadowed: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// (Internal) What `exec` starts: sets the parent-death signal, then
    /// becomes the command, unless refresh-session PARENT is gone.
    #[command(hide = true)]
    ExecChild {
        /// The process id of the `exec` that started it.
        parent: u32,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Print who the credentials belong to (STS GetCallerIdentity).
    Whoami(Output),
    /// IAM Identity Center (SSO).
    #[command(subcommand)]
    Sso(SsoCommand),
    /// Print the credentials as `export` lines for a POSIX shell:
    /// eval "$(refresh-session env ...)".
    Env(Output),
}

/// The `sso` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SsoCommand {
    /// Log in as `aws sso login` does: confirm a code in a browser, and the
    /// token goes to ~/.aws/sso/cache, where the AWS CLI, every SDK and
    /// refresh-session read it. A login of an [sso-session] comes with a
    /// refresh token, which renews it without the browser until the
    /// session ends.
    ///
    /// Logs in for --profile's SSO configuration (default: AWS_PROFILE,
    /// else `default`), or --sso-session's.
    Login {
        /// The [sso-session NAME] section of ~/.aws/config to log in to.
        #[arg(long, value_name = "NAME")]
        sso_session: Option<String>,
        /// Open the confirmation page in a browser ($BROWSER, else
        /// xdg-open or open).
        #[arg(long)]
        browser: bool,
    },
}

/// Output format.
#[derive(Debug, Args)]
pub(crate) struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The credential-process disk cache.
#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    /// The cache directory [default: $XDG_CACHE_HOME/refresh-session, else
    /// ~/.cache/refresh-session].
    #[arg(long, env = "REFRESH_SESSION_CACHE_DIR", value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub(crate) no_cache: bool,
}

/// Where credentials come from, and how they are refreshed.
#[derive(Debug, Args)]
pub(crate) struct SessionArgs {
    /// Assume this role with STS AssumeRole.
    #[arg(
        long,
        global = true,
        value_name = "ARN",
        conflicts_with = "iot_endpoint"
    )]
    pub(crate) role_arn: Option<String>,
    /// RoleSessionName [default: refresh-session-MILLIS, the Unix time in ms].
    #[arg(long, global = true, value_name = "NAME", requires = "role_arn")]
    pub(crate) role_session_name: Option<String>,
    /// DurationSeconds of the role session (900 to 43200), or of IoT
    /// credentials.
    #[arg(long, global = true, value_name = "SECONDS")]
    pub(crate) duration_seconds: Option<u64>,
    /// ExternalId, as the role's trust policy demands.
    #[arg(long, global = true, value_name = "ID", requires = "role_arn")]
    pub(crate) external_id: Option<String>,
    /// The MFA device's serial number (ARN): AssumeRole asks for a code.
    #[arg(long, global = true, value_name = "ARN", requires = "role_arn")]
    pub(crate) serial_number: Option<String>,
    /// Assume the role with an MFA session: one GetSessionToken code for
    /// --serial-number lasts DURATION (15m to 36h, e.g. 12h, 90m, 3600s)
    /// and signs every AssumeRole meanwhile, without a code. The source
    /// credentials must be an IAM user's keys. credential-process keeps the
    /// MFA session in its cache: runs for any role ask for one code per
    /// DURATION.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        requires = "serial_number",
        value_parser = parse_duration
    )]
    pub(crate) mfa_session: Option<Duration>,
    /// A shell command that prints the MFA code (e.g. `ykman oath accounts
    /// code --single aws`) [default: ask on the terminal].
    #[arg(long, global = true, value_name = "COMMAND")]
    pub(crate) mfa_command: Option<String>,
    /// The region [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's].
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// The STS endpoint [default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL,
    /// the regional endpoint].
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// The profile of ~/.aws/config and ~/.aws/credentials for the
    /// default chain [default: AWS_PROFILE, else `default`].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Seconds before expiry from which a refresh starts in the background
    /// (default by the credentials' lifetime: up to 20 min, 300; under
    /// 90 min, 900; longer, 3600; at most half the lifetime).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub(crate) advisory_timeout: Option<u64>,
    /// Seconds before expiry from which callers wait for a refresh
    /// (default 60, or the advisory timeout if smaller).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub(crate) mandatory_timeout: Option<u64>,
    /// When a refresh after expiry fails, hand out the expired credentials
    /// instead of failing (the AWS SDKs' static stability, for IMDS and
    /// container credentials during an outage).
    #[arg(long, global = true)]
    pub(crate) serve_expired_on_failure: bool,
    /// AWS IoT credential provider endpoint
    /// (`<prefix>.credentials.iot.<region>.amazonaws.com`): X.509
    /// credentials instead of STS.
    #[arg(
        long,
        global = true,
        value_name = "HOST",
        requires_all = ["role_alias", "certificate"]
    )]
    pub(crate) iot_endpoint: Option<String>,
    /// The IoT role alias.
    #[arg(long, global = true, value_name = "ALIAS", requires = "iot_endpoint")]
    pub(crate) role_alias: Option<String>,
    /// The IoT thing name (x-amzn-iot-thingname).
    #[arg(long, global = true, value_name = "NAME", requires = "iot_endpoint")]
    pub(crate) thing_name: Option<String>,
    /// The device certificate (PEM file).
    #[arg(long, global = true, value_name = "FILE", requires = "iot_endpoint")]
    pub(crate) certificate: Option<PathBuf>,
    /// The device's private key (PEM file).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        requires = "iot_endpoint",
        conflicts_with = "pkcs11"
    )]
    pub(crate) private_key: Option<PathBuf>,
    /// The device's key in a PKCS#11 token, as an RFC 7512 URI
    /// (`pkcs11:token=..;object=..?module-path=..`) without `pin-value`:
    /// the PIN comes from --pin-file, else from REFRESH_SESSION_PKCS11_PIN,
    /// and no program refresh-session starts sees it.
    #[arg(long, global = true, value_name = "URI", requires = "iot_endpoint")]
    pub(crate) pkcs11: Option<String>,
    /// A file (mode 0600) whose first line is the PKCS#11 user PIN.
    #[arg(long, global = true, value_name = "FILE", requires = "pkcs11")]
    pub(crate) pin_file: Option<PathBuf>,
    /// Trust anchors for the IoT endpoint (PEM file) [default: the
    /// webpki roots].
    #[arg(long, global = true, value_name = "FILE", requires = "iot_endpoint")]
    pub(crate) ca: Option<PathBuf>,
}

/// A duration as whole seconds with an optional unit: `3600`, `3600s`,
/// `90m`, `12h`, `1d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("expected a number of seconds, or of s, m, h or d: 12h, 90m".into()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .map(Duration::from_secs)
        .ok_or_else(|| "expected a number of seconds, or of s, m, h or d: 12h, 90m".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        let secs = |text| parse_duration(text).map(|d| d.as_secs());
        assert_eq!(secs("3600"), Ok(3600));
        assert_eq!(secs("3600s"), Ok(3600));
        assert_eq!(secs("90m"), Ok(5400));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("1d"), Ok(86_400));
        for bad in [
            "",
            "h",
            "12 h",
            "1.5h",
            "12y",
            "-1h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
