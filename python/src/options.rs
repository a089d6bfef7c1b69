//! The session's options as the Python package hands them over, checked
//! for names and types there, and turned into a builder here. The engine
//! checks their values when the session is built.

use std::time::Duration;

use pyo3::prelude::*;
use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Builder, ConfigError, Credentials, Pkcs11, Secret};

use crate::hooks;

/// Every option, each key present (None when not given).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Options {
    method: String,
    defer_refresh: bool,
    advisory_timeout: Option<f64>,
    mandatory_timeout: Option<f64>,
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    /// (access key, secret key, session token) for the STS calls.
    source_keys: Option<(String, String, Option<String>)>,
    assume_role: Option<AssumeRoleArgs>,
    mfa_provider: Option<Py<PyAny>>,
    mfa_command: Option<Vec<String>>,
    custom: Option<Py<PyAny>>,
    iot: Option<IotArgs>,
}

/// `assume_role_kwargs`, normalised.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct AssumeRoleArgs {
    role_arn: String,
    role_session_name: Option<String>,
    duration_seconds: Option<u64>,
    external_id: Option<String>,
    serial_number: Option<String>,
    token_code: Option<String>,
    policy: Option<String>,
    policy_arns: Vec<String>,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    source_identity: Option<String>,
    provided_contexts: Vec<(String, String)>,
}

/// The IoT options, a file or PEM text for each part.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct IotArgs {
    endpoint: String,
    role_alias: String,
    thing_name: Option<String>,
    duration_seconds: Option<u64>,
    certificate_file: Option<String>,
    certificate_pem: Option<String>,
    private_key_file: Option<String>,
    private_key_pem: Option<String>,
    pkcs11: Option<Pkcs11Args>,
    ca_file: Option<String>,
    ca_pem: Option<String>,
}

/// boto3-refresh-session's `pkcs11` dict.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Pkcs11Args {
    pkcs11_lib: String,
    user_pin: String,
    slot_id: Option<u64>,
    token_label: Option<String>,
    private_key_label: String,
}

impl Options {
    /// The builder these options describe.
    pub(crate) fn builder(self) -> Result<Builder, ConfigError> {
        let mut builder = match self.method.as_str() {
            "sts" => {
                let args = self.assume_role.ok_or_else(|| {
                    ConfigError::new(
                        "assume_role_kwargs",
                        "method=\"sts\" needs assume_role_kwargs",
                    )
                })?;
                RefreshableSession::sts(args.params())
            }
            "custom" => {
                let provider = self.custom.ok_or_else(|| {
                    ConfigError::new(
                        "custom_credentials_method",
                        "method=\"custom\" needs custom_credentials_method",
                    )
                })?;
                RefreshableSession::custom(hooks::custom(provider))
            }
            "iot" => {
                let args = self.iot.ok_or_else(|| {
                    ConfigError::new("endpoint", "method=\"iot\" needs endpoint and role_alias")
                })?;
                RefreshableSession::iot(args.params())
            }
            other => {
                return Err(ConfigError::new(
                    "method",
                    format!("`{other}` is not one of \"sts\", \"custom\", \"iot\""),
                ));
            }
        };
        builder = builder.defer_refresh(self.defer_refresh);
        if let Some(seconds) = self.advisory_timeout {
            builder = builder.advisory_timeout(seconds_field("advisory_timeout", seconds)?);
        }
        if let Some(seconds) = self.mandatory_timeout {
            builder = builder.mandatory_timeout(seconds_field("mandatory_timeout", seconds)?);
        }
        if let Some(region) = self.region {
            builder = builder.region(region);
        }
        if let Some(url) = self.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if let Some(profile) = self.profile {
            builder = builder.profile_name(profile);
        }
        if let Some((access_key, secret_key, token)) = self.source_keys {
            let token = token.map(Secret::new);
            builder =
                builder.source_credentials(Credentials::new(access_key, secret_key, token, None));
        }
        if let Some(provider) = self.mfa_provider {
            builder = builder.mfa_token_provider(hooks::mfa(provider));
        }
        if let Some(argv) = self.mfa_command {
            builder = builder.mfa_command(argv);
        }
        Ok(builder)
    }
}

impl AssumeRoleArgs {
    fn params(self) -> AssumeRole {
        let mut params = AssumeRole::new(self.role_arn);
        if let Some(name) = self.role_session_name {
            params = params.role_session_name(name);
        }
        if let Some(seconds) = self.duration_seconds {
            params = params.duration(Duration::from_secs(seconds));
        }
        if let Some(id) = self.external_id {
            params = params.external_id(id);
        }
        if let Some(serial) = self.serial_number {
            params = params.serial_number(serial);
        }
        if let Some(code) = self.token_code {
            params = params.token_code(code);
        }
        if let Some(policy) = self.policy {
            params = params.policy(policy);
        }
        for arn in self.policy_arns {
            params = params.policy_arn(arn);
        }
        for (key, value) in self.tags {
            params = params.tag(key, value);
        }
        for key in self.transitive_tag_keys {
            params = params.transitive_tag_key(key);
        }
        if let Some(identity) = self.source_identity {
            params = params.source_identity(identity);
        }
        for (provider, assertion) in self.provided_contexts {
            params = params.provided_context(provider, assertion);
        }
        params
    }
}

impl IotArgs {
    fn params(self) -> Iot {
        let mut params = Iot::new(self.endpoint, self.role_alias);
        if let Some(name) = self.thing_name {
            params = params.thing_name(name);
        }
        if let Some(seconds) = self.duration_seconds {
            params = params.duration(Duration::from_secs(seconds));
        }
        if let Some(path) = self.certificate_file {
            params = params.certificate_file(path);
        }
        if let Some(pem) = self.certificate_pem {
            params = params.certificate_pem(pem);
        }
        if let Some(path) = self.private_key_file {
            params = params.private_key_file(path);
        }
        if let Some(pem) = self.private_key_pem {
            params = params.private_key_pem(pem);
        }
        if let Some(key) = self.pkcs11 {
            params = params.pkcs11(key.key());
        }
        if let Some(path) = self.ca_file {
            params = params.ca_file(path);
        }
        if let Some(pem) = self.ca_pem {
            params = params.ca_pem(pem);
        }
        params
    }
}

impl Pkcs11Args {
    fn key(self) -> Pkcs11 {
        let token = self.token_label.unwrap_or_default();
        let key = Pkcs11::new(
            self.pkcs11_lib,
            token,
            self.user_pin,
            self.private_key_label,
        );
        match self.slot_id {
            Some(slot) => key.in_slot(slot),
            None => key,
        }
    }
}

/// A timeout in seconds as a duration; negative, NaN or endless is refused.
fn seconds_field(field: &'static str, seconds: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| ConfigError::new(field, format!("{seconds} is not a number of seconds")))
}
