//! Which source the chain uses, decided when the session is built from the
//! environment and the shared files: a base source, and the roles a
//! profile chain assumes with it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::error::ConfigError;
use crate::profile::{ProfileSet, Section};
use crate::secret::Secret;
use crate::source;
use crate::sts::{AssumeRole, GetSessionToken};

use super::container::Container;
use super::imds::Imds;
use super::sso::Sso;
use super::{Skipped, SourceKind};
use crate::oidc::OidcEndpoint;
use crate::sso_token::SsoLogin;

/// Where base credentials come from.
#[derive(Debug, Clone)]
pub(crate) enum Base {
    /// Keys from the environment or a profile.
    Static(Credentials),
    /// `AssumeRoleWithWebIdentity` with the token in `token_file`.
    WebIdentity {
        token_file: String,
        role_arn: String,
        session_name: String,
    },
    /// A profile's `credential_process` command line.
    Process(String),
    /// An SSO login.
    Sso(Sso),
    /// The container endpoint.
    Container(Container),
    /// The instance metadata service: the last resort, tried at refresh.
    Imds(Imds),
    /// Nothing applies: every source, and why it was passed over.
    Nothing,
}

/// A role a profile assumes with the credentials before it.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    /// The `AssumeRole` call (`SerialNumber` set for a profile's
    /// `mfa_serial`, unless an MFA session stands in for the code).
    pub(crate) params: AssumeRole,
    /// The profile it comes from, for messages.
    pub(crate) profile: String,
    /// The MFA session that signs the call instead (`mfa_serial` with
    /// `mfa_session_duration`, or the builder's `mfa_session` for that
    /// device).
    pub(crate) mfa_session: Option<GetSessionToken>,
}

impl Hop {
    /// The MFA device the hop needs codes for, if any.
    pub(crate) fn mfa_serial(&self) -> Option<&str> {
        self.params.mfa_serial().or_else(|| {
            self.mfa_session
                .as_ref()
                .map(GetSessionToken::serial_number)
        })
    }
}

/// The chain's decision.
#[derive(Debug, Clone)]
pub(crate) struct SourcePlan {
    pub(crate) base: Base,
    /// Roles to assume in turn, first to last.
    pub(crate) hops: Vec<Hop>,
    /// The sources passed over before `base`.
    pub(crate) passed_over: Vec<Skipped>,
    /// How logs name the source.
    pub(crate) description: String,
}

/// What the chain decides from.
pub(crate) struct ChainInputs<'a> {
    pub(crate) env: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) profiles: &'a ProfileSet,
    /// The builder's `profile_name`: it takes precedence over `AWS_PROFILE`
    /// and over keys in the environment, as a named profile does in the
    /// AWS CLI.
    pub(crate) profile_name: Option<&'a str>,
    /// For default role session names.
    pub(crate) now: OffsetDateTime,
    /// The builder's `mfa_session`: profiles whose `mfa_serial` is its
    /// device use it.
    pub(crate) mfa_session: Option<&'a GetSessionToken>,
    /// STS is a local test server, which may issue shorter sessions.
    pub(crate) loopback: bool,
}

impl SourcePlan {
    /// Walks the chain in the AWS SDKs' order; an error is a configuration
    /// that cannot work (half a key pair, a profile cycle, a missing
    /// profile named explicitly), never the absence of credentials.
    pub(crate) fn decide(inputs: &ChainInputs<'_>) -> Result<Self, ConfigError> {
        Decider {
            inputs,
            passed_over: Vec::new(),
        }
        .decide()
    }
}

struct Decider<'a, 'b> {
    inputs: &'a ChainInputs<'b>,
    passed_over: Vec<Skipped>,
}

impl Decider<'_, '_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.inputs.env)(name).filter(|v| !v.is_empty())
    }

    fn pass(&mut self, kind: SourceKind, reason: impl Into<String>) {
        self.passed_over.push(Skipped {
            kind,
            reason: reason.into(),
        });
    }

    fn plan(self, base: Base, hops: Vec<Hop>, description: String) -> SourcePlan {
        SourcePlan {
            base,
            hops,
            passed_over: self.passed_over,
            description,
        }
    }

    fn decide(mut self) -> Result<SourcePlan, ConfigError> {
        let explicit = self.inputs.profile_name;
        if explicit.is_some() {
            self.pass(SourceKind::Environment, "not read: a profile is named");
            self.pass(SourceKind::WebIdentity, "not read: a profile is named");
        } else {
            if let Some(credentials) = environment_keys(self.inputs.env)? {
                return Ok(self.plan(Base::Static(credentials), Vec::new(), "environment".into()));
            }
            self.pass(
                SourceKind::Environment,
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
            );
            match (
                self.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
                self.var("AWS_ROLE_ARN"),
            ) {
                (Some(token_file), Some(role_arn)) => {
                    let session_name = self
                        .var("AWS_ROLE_SESSION_NAME")
                        .unwrap_or_else(|| default_session_name(self.inputs.now));
                    let base = Base::WebIdentity {
                        token_file,
                        role_arn,
                        session_name,
                    };
                    return Ok(self.plan(base, Vec::new(), "web identity (environment)".into()));
                }
                (Some(_), None) => self.pass(SourceKind::WebIdentity, "AWS_ROLE_ARN is not set"),
                (None, _) => self.pass(
                    SourceKind::WebIdentity,
                    "AWS_WEB_IDENTITY_TOKEN_FILE is not set",
                ),
            }
        }
        let (name, named) = match explicit {
            Some(name) => (name.to_owned(), Some("profile_name")),
            None => match self
                .var("AWS_PROFILE")
                .or_else(|| self.var("AWS_DEFAULT_PROFILE"))
            {
                Some(name) => (name, Some("AWS_PROFILE")),
                None => ("default".to_owned(), None),
            },
        };
        match (self.inputs.profiles.profile(&name), named) {
            (Some(_), _) => {
                if let Some((base, hops)) = self.profile(&name)? {
                    let description = format!("profile `{name}`");
                    return Ok(self.plan(base, hops, description));
                }
                self.pass(
                    SourceKind::Profile,
                    format!("profile `{name}` holds no credentials"),
                );
            }
            (None, Some(field)) => {
                return Err(ConfigError::new(
                    field,
                    format!("profile `{name}` is in neither the config nor the credentials file"),
                ));
            }
            (None, None) => self.pass(
                SourceKind::Profile,
                "no `default` profile in the config or credentials file",
            ),
        }
        if let Some(container) = Container::from_env(self.inputs.env)? {
            let description = format!("container endpoint {}", container.uri());
            return Ok(self.plan(Base::Container(container), Vec::new(), description));
        }
        self.pass(
            SourceKind::Container,
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set",
        );
        match Imds::from_env(self.inputs.env)? {
            Some(imds) => {
                let description = format!("IMDS at {}", imds.endpoint());
                Ok(self.plan(Base::Imds(imds), Vec::new(), description))
            }
            None => {
                self.pass(SourceKind::Imds, "AWS_EC2_METADATA_DISABLED is true");
                Ok(self.plan(Base::Nothing, Vec::new(), "nothing".into()))
            }
        }
    }

    /// The base source and roles of profile `name`, following
    /// `source_profile` links; `None` if the profile holds no credentials.
    fn profile(&self, name: &str) -> Result<Option<(Base, Vec<Hop>)>, ConfigError> {
        let mut hops = Vec::new();
        let mut visited: Vec<String> = Vec::new();
        let mut current = name.to_owned();
        let base = loop {
            let referrer = visited.last().cloned().unwrap_or_default();
            if visited.contains(&current) {
                visited.push(current);
                return Err(ConfigError::new(
                    "source_profile",
                    format!("the profiles form a cycle: {}", visited.join(" -> ")),
                ));
            }
            visited.push(current.clone());
            let profile = self.inputs.profiles.profile(&current).ok_or_else(|| {
                in_profile(
                    &referrer,
                    ConfigError::new(
                        "source_profile",
                        format!("names profile `{current}`, which does not exist"),
                    ),
                )
            })?;
            let Some(role_arn) = profile.get("role_arn") else {
                match self.profile_base(&current, profile)? {
                    Some(base) => break base,
                    None if hops.is_empty() => return Ok(None),
                    None => {
                        return Err(in_profile(
                            &current,
                            ConfigError::new(
                                "source_profile",
                                "holds no credentials to assume the role with",
                            ),
                        ));
                    }
                }
            };
            if let Some(token_file) = profile.get("web_identity_token_file") {
                break Base::WebIdentity {
                    token_file: token_file.to_owned(),
                    role_arn: role_arn.to_owned(),
                    session_name: self.session_name(profile),
                };
            }
            hops.push(self.hop(&current, profile, role_arn)?);
            match (
                profile.get("source_profile"),
                profile.get("credential_source"),
            ) {
                (Some(source), None) if source == current => {
                    // A profile may assume its role with its own keys.
                    let keys = static_keys(&current, profile)?.ok_or_else(|| {
                        in_profile(
                            &current,
                            ConfigError::new("source_profile", "names itself but holds no keys"),
                        )
                    })?;
                    break Base::Static(keys);
                }
                (Some(source), None) => current = source.to_owned(),
                (None, Some(source)) => break self.credential_source(&current, source)?,
                (Some(_), Some(_)) => {
                    return Err(in_profile(
                        &current,
                        ConfigError::new(
                            "credential_source",
                            "set source_profile or credential_source, not both",
                        ),
                    ));
                }
                (None, None) => {
                    return Err(in_profile(
                        &current,
                        ConfigError::new(
                            "source_profile",
                            "role_arn needs source_profile or credential_source",
                        ),
                    ));
                }
            }
        };
        hops.reverse();
        check_mfa_sessions(&base, &hops)?;
        Ok(Some((base, hops)))
    }

    /// A profile's own credentials: SSO, static keys, `credential_process`.
    fn profile_base(&self, name: &str, profile: &Section) -> Result<Option<Base>, ConfigError> {
        if profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some() {
            return self.sso(name, profile).map(|sso| Some(Base::Sso(sso)));
        }
        if let Some(keys) = static_keys(name, profile)? {
            return Ok(Some(Base::Static(keys)));
        }
        Ok(profile
            .get("credential_process")
            .map(|line| Base::Process(line.to_owned())))
    }

    fn hop(&self, name: &str, profile: &Section, role_arn: &str) -> Result<Hop, ConfigError> {
        let mut params = AssumeRole::new(role_arn).role_session_name(self.session_name(profile));
        if let Some(id) = profile.get("external_id") {
            params = params.external_id(id);
        }
        let mfa_session = self.mfa_session(name, profile)?;
        if let (Some(serial), None) = (profile.get("mfa_serial"), &mfa_session) {
            params = params.serial_number(serial);
        }
        if let Some(seconds) = profile.get("duration_seconds") {
            let seconds: u64 = seconds.parse().map_err(|_| {
                in_profile(
                    name,
                    ConfigError::new("duration_seconds", format!("`{seconds}` is not a number")),
                )
            })?;
            params = params.duration(Duration::from_secs(seconds));
        }
        let params = params
            .validated(self.inputs.now, false)
            .map_err(|e| in_profile(name, e))?;
        Ok(Hop {
            params,
            profile: name.to_owned(),
            mfa_session,
        })
    }

    /// The MFA session a role profile opts into: `mfa_session_duration`
    /// (seconds) beside its `mfa_serial`, or the builder's for that device.
    fn mfa_session(
        &self,
        name: &str,
        profile: &Section,
    ) -> Result<Option<GetSessionToken>, ConfigError> {
        let in_this = |e| in_profile(name, e);
        let Some(serial) = profile.get("mfa_serial") else {
            if profile.get("mfa_session_duration").is_some() {
                return Err(in_this(ConfigError::new(
                    "mfa_session_duration",
                    "needs mfa_serial: the MFA device of the session",
                )));
            }
            return Ok(None);
        };
        let params = match profile.get("mfa_session_duration") {
            Some(seconds) => {
                let seconds: u64 = seconds.parse().map_err(|_| {
                    in_this(ConfigError::new(
                        "mfa_session_duration",
                        format!("`{seconds}` is not a number of seconds"),
                    ))
                })?;
                GetSessionToken::new(serial).duration(Duration::from_secs(seconds))
            }
            None => match self.inputs.mfa_session {
                Some(builder) if builder.serial_number() == serial => builder.clone(),
                _ => return Ok(None),
            },
        };
        params
            .validated(self.inputs.loopback)
            .map(Some)
            .map_err(in_this)
    }

    fn session_name(&self, profile: &Section) -> String {
        profile
            .get("role_session_name")
            .map_or_else(|| default_session_name(self.inputs.now), str::to_owned)
    }

    fn credential_source(&self, name: &str, source: &str) -> Result<Base, ConfigError> {
        let unavailable = |what: &str| {
            in_profile(
                name,
                ConfigError::new("credential_source", format!("is {source}, but {what}")),
            )
        };
        match source {
            "Environment" => environment_keys(self.inputs.env)?
                .map(Base::Static)
                .ok_or_else(|| unavailable("AWS_ACCESS_KEY_ID is not set")),
            "Ec2InstanceMetadata" => Imds::from_env(self.inputs.env)?
                .map(Base::Imds)
                .ok_or_else(|| unavailable("AWS_EC2_METADATA_DISABLED is true")),
            "EcsContainer" => Container::from_env(self.inputs.env)?
                .map(Base::Container)
                .ok_or_else(|| unavailable("no AWS_CONTAINER_CREDENTIALS_* URI is set")),
            other => Err(in_profile(
                name,
                ConfigError::new(
                    "credential_source",
                    format!("`{other}` is not Environment, Ec2InstanceMetadata or EcsContainer"),
                ),
            )),
        }
    }

    fn sso(&self, name: &str, profile: &Section) -> Result<Sso, ConfigError> {
        let missing = |key: &'static str| {
            in_profile(
                name,
                ConfigError::new(key, "is required for an SSO profile"),
            )
        };
        let sso_login = SsoLogin::in_profile(self.inputs.profiles, profile, self.inputs.env)
            .map_err(|e| in_profile(name, e))?;
        let region = sso_login.region.as_str();
        let account_id = profile
            .get("sso_account_id")
            .ok_or_else(|| missing("sso_account_id"))?;
        let role_name = profile
            .get("sso_role_name")
            .ok_or_else(|| missing("sso_role_name"))?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(in_profile(
                name,
                ConfigError::new(
                    "sso_account_id",
                    format!("`{account_id}` is not a 12-digit account id"),
                ),
            ));
        }
        crate::validate::charset(
            "sso_role_name",
            role_name,
            crate::validate::name_char,
            "letters, digits and _+=,.@-",
        )
        .map_err(|e| in_profile(name, e))?;
        let endpoint = match self.var("AWS_ENDPOINT_URL_SSO") {
            Some(url) => crate::validate::endpoint_url("AWS_ENDPOINT_URL_SSO", &url)?,
            None => format!("https://portal.sso.{region}.amazonaws.com"),
        };
        // Only sso-session logins carry what renews them, as in botocore.
        let oidc = match sso_login.session {
            Some(_) => Some(OidcEndpoint::resolve(
                region,
                self.var("AWS_ENDPOINT_URL_SSO_OIDC").as_deref(),
            )?),
            None => None,
        };
        Ok(Sso::new(
            sso_login.cache_file.to_string_lossy().into_owned(),
            account_id.to_owned(),
            role_name.to_owned(),
            endpoint,
            sso_login.login_commands(name),
            oidc,
        ))
    }
}

/// Keys in the environment: `None` if there are none, an error for half a
/// pair.
fn environment_keys(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, ConfigError> {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    let any = [
        "AWS_ACCESS_KEY_ID",
        "AWS_ACCESS_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECRET_KEY",
    ]
    .iter()
    .any(|name| set(name));
    if !any {
        return Ok(None);
    }
    source::from_environment(env).map(Some)
}

/// A profile's `aws_access_key_id`, `aws_secret_access_key` and
/// `aws_session_token`.
fn static_keys(name: &str, profile: &Section) -> Result<Option<Credentials>, ConfigError> {
    let Some(access_key_id) = profile.get("aws_access_key_id") else {
        return Ok(None);
    };
    let secret = profile.get("aws_secret_access_key").ok_or_else(|| {
        in_profile(
            name,
            ConfigError::new(
                "aws_secret_access_key",
                "is not set, but aws_access_key_id is",
            ),
        )
    })?;
    let token = profile
        .get("aws_session_token")
        .or_else(|| profile.get("aws_security_token"));
    Ok(Some(Credentials::new(
        access_key_id,
        Secret::new(secret),
        token.map(Secret::new),
        None,
    )))
}

/// An endpoint override: https anywhere, http to loopback only.
/// An MFA session needs an IAM user's long-term keys: only the first role
/// of a chain that starts with such keys can have one.
fn check_mfa_sessions(base: &Base, hops: &[Hop]) -> Result<(), ConfigError> {
    for (i, hop) in hops.iter().enumerate() {
        let long_term = matches!(base, Base::Static(keys) if keys.session_token().is_none());
        if hop.mfa_session.is_some() && (i > 0 || !long_term) {
            return Err(in_profile(
                &hop.profile,
                ConfigError::new(
                    "mfa_session_duration",
                    "an MFA session (GetSessionToken) needs an IAM user's long-term keys, and this role is assumed with temporary credentials: give its source_profile the user's keys, or drop the MFA session",
                ),
            ));
        }
    }
    Ok(())
}

fn in_profile(name: &str, error: ConfigError) -> ConfigError {
    ConfigError::new(
        error.field(),
        format!("in profile `{name}`: {}", error.problem()),
    )
}

fn default_session_name(now: OffsetDateTime) -> String {
    format!("refresh-session-{}", now.unix_timestamp_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests;
