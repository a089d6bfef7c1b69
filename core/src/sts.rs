//! AWS STS over its query protocol: the `AssumeRole` parameters and their
//! validation, the endpoint, signed requests, and the parsing of answers
//! (`AssumeRole`, `GetSessionToken`, `GetCallerIdentity`, `ErrorResponse`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::credentials::Credentials;
use crate::error::{ConfigError, Error, ErrorCode, ServiceError};
use crate::mfa;
use crate::query::Form;
use crate::secret::Secret;
use crate::sign::sign_request;
use crate::validate::{charset, count, length, name_char, text_char};
use crate::xml::Document;

mod session_token;

pub(crate) use session_token::session_token_request;
pub use session_token::{GetSessionToken, parse_session_token};

/// The STS API version this crate speaks.
pub const API_VERSION: &str = "2011-06-15";
/// The service name in SigV4 scopes.
pub const SIGNING_NAME: &str = "sts";
/// How errors name the service.
const SERVICE: &str = "STS";
/// The shortest and longest session STS grants.
const DURATION_RANGE: std::ops::RangeInclusive<u64> = 900..=43_200;

/// The parameters of an STS `AssumeRole` call, in the API's vocabulary.
///
/// Every field of the API is here; values are checked when the session is
/// built, and an invalid one is a [`ConfigError`] naming the API field.
///
/// ```
/// use std::time::Duration;
/// use refresh_session_core::sts::AssumeRole;
///
/// let params = AssumeRole::new("arn:aws:iam::123456789012:role/deploy")
///     .role_session_name("ci-run-42")
///     .duration(Duration::from_secs(3600))
///     .external_id("partner-7")
///     .tag("team", "platform")
///     .transitive_tag_key("team");
/// assert_eq!(params.role_arn(), "arn:aws:iam::123456789012:role/deploy");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AssumeRole {
    role_arn: String,
    role_session_name: Option<String>,
    duration: Option<Duration>,
    external_id: Option<String>,
    policy: Option<String>,
    policy_arns: Vec<String>,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    source_identity: Option<String>,
    serial_number: Option<String>,
    token_code: Option<Secret>,
    provided_contexts: Vec<(String, String)>,
}

impl AssumeRole {
    /// Parameters to assume `role_arn`.
    pub fn new(role_arn: impl Into<String>) -> Self {
        Self {
            role_arn: role_arn.into(),
            ..Self::default()
        }
    }

    /// `RoleSessionName`; defaults to `refresh-session-<unix millis>`.
    pub fn role_session_name(mut self, name: impl Into<String>) -> Self {
        self.role_session_name = Some(name.into());
        self
    }

    /// `DurationSeconds`: 15 minutes to 12 hours, in whole seconds (the role's
    /// maximum session duration still applies). STS's default is one hour.
    /// Against a loopback `endpoint_url` (a test server such as moto) any
    /// whole number of seconds from 1 is accepted, so that tests and demos
    /// can watch credentials expire.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// `ExternalId`, as the role's trust policy demands.
    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// `Policy`: an inline session policy (JSON).
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// Adds a managed session policy to `PolicyArns`.
    pub fn policy_arn(mut self, arn: impl Into<String>) -> Self {
        self.policy_arns.push(arn.into());
        self
    }

    /// Adds a session tag to `Tags`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Adds a key to `TransitiveTagKeys`.
    pub fn transitive_tag_key(mut self, key: impl Into<String>) -> Self {
        self.transitive_tag_keys.push(key.into());
        self
    }

    /// `SourceIdentity`.
    pub fn source_identity(mut self, identity: impl Into<String>) -> Self {
        self.source_identity = Some(identity.into());
        self
    }

    /// `SerialNumber`: the ARN (or hardware serial) of the MFA device.
    pub fn serial_number(mut self, serial: impl Into<String>) -> Self {
        self.serial_number = Some(serial.into());
        self
    }

    /// `TokenCode`: a six-digit MFA code. It is good for one call only, so a
    /// session with a static code can fetch once; refreshes need an MFA
    /// token provider.
    pub fn token_code(mut self, code: impl Into<Secret>) -> Self {
        self.token_code = Some(code.into());
        self
    }

    /// Adds a trusted context assertion to `ProvidedContexts`.
    pub fn provided_context(
        mut self,
        provider_arn: impl Into<String>,
        context_assertion: impl Into<String>,
    ) -> Self {
        self.provided_contexts
            .push((provider_arn.into(), context_assertion.into()));
        self
    }

    /// The role to assume.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// The session name, if set.
    pub fn session_name(&self) -> Option<&str> {
        self.role_session_name.as_deref()
    }

    /// The MFA device, if set.
    pub fn mfa_serial(&self) -> Option<&str> {
        self.serial_number.as_deref()
    }

    pub(crate) fn static_token_code(&self) -> Option<&Secret> {
        self.token_code.as_ref()
    }

    /// Fills in the default session name, then checks every field against
    /// the AWS API reference (`loopback`: the endpoint is a local test
    /// server, which may issue shorter sessions than AWS).
    pub(crate) fn validated(
        mut self,
        now: OffsetDateTime,
        loopback: bool,
    ) -> Result<Self, ConfigError> {
        let name = self.role_session_name.get_or_insert_with(|| {
            format!("refresh-session-{}", now.unix_timestamp_nanos() / 1_000_000)
        });
        length("RoleSessionName", name, 2, 64)?;
        charset(
            "RoleSessionName",
            name,
            name_char,
            "letters, digits and _+=,.@-",
        )?;
        self.check_role_arn()?;
        self.check_duration(loopback)?;
        if let Some(id) = &self.external_id {
            length("ExternalId", id, 2, 1224)?;
            charset(
                "ExternalId",
                id,
                |c| name_char(c) || ":/".contains(c),
                "letters, digits and _+=,.@:/-",
            )?;
        }
        if let Some(policy) = &self.policy {
            length("Policy", policy, 1, 2048)?;
            charset("Policy", policy, text_char, "printable text")?;
        }
        count("PolicyArns", &self.policy_arns, 10)?;
        for arn in &self.policy_arns {
            length("PolicyArns", arn, 20, 2048)?;
        }
        self.check_tags()?;
        if let Some(identity) = &self.source_identity {
            length("SourceIdentity", identity, 2, 64)?;
            charset(
                "SourceIdentity",
                identity,
                name_char,
                "letters, digits and _+=,.@-",
            )?;
            if identity.to_ascii_lowercase().starts_with("aws:") {
                return Err(ConfigError::new(
                    "SourceIdentity",
                    "must not start with `aws:`, which AWS reserves",
                ));
            }
        }
        self.check_mfa_fields()?;
        count("ProvidedContexts", &self.provided_contexts, 5)?;
        for (arn, assertion) in &self.provided_contexts {
            length("ProvidedContexts.ProviderArn", arn, 20, 2048)?;
            length("ProvidedContexts.ContextAssertion", assertion, 4, 2048)?;
        }
        Ok(self)
    }

    fn check_role_arn(&self) -> Result<(), ConfigError> {
        length("RoleArn", &self.role_arn, 20, 2048)?;
        if !self.role_arn.starts_with("arn:") || !self.role_arn.contains(":role/") {
            return Err(ConfigError::new(
                "RoleArn",
                format!(
                    "`{}` is not a role ARN; expected arn:aws:iam::<account>:role/<name>",
                    self.role_arn
                ),
            ));
        }
        Ok(())
    }

    fn check_duration(&self, loopback: bool) -> Result<(), ConfigError> {
        let Some(duration) = self.duration else {
            return Ok(());
        };
        let seconds = duration.as_secs();
        let in_range = DURATION_RANGE.contains(&seconds)
            || (loopback && (1..*DURATION_RANGE.start()).contains(&seconds));
        if duration.subsec_nanos() != 0 || !in_range {
            return Err(ConfigError::new(
                "DurationSeconds",
                format!(
                    "must be whole seconds from 900 (15 minutes) to 43200 (12 hours), got {} s",
                    duration.as_secs_f64()
                ),
            ));
        }
        Ok(())
    }

    fn check_tags(&self) -> Result<(), ConfigError> {
        count("Tags", &self.tags, 50)?;
        let mut keys: Vec<String> = Vec::with_capacity(self.tags.len());
        for (key, value) in &self.tags {
            length("Tags.Key", key, 1, 128)?;
            length("Tags.Value", value, 0, 256)?;
            charset("Tags.Key", key, tag_char, TAG_CHARS)?;
            charset("Tags.Value", value, tag_char, TAG_CHARS)?;
            let folded = key.to_lowercase();
            if keys.contains(&folded) {
                return Err(ConfigError::new(
                    "Tags.Key",
                    format!("`{key}` is set twice (keys are case-insensitive)"),
                ));
            }
            keys.push(folded);
        }
        count("TransitiveTagKeys", &self.transitive_tag_keys, 50)?;
        for key in &self.transitive_tag_keys {
            length("TransitiveTagKeys", key, 1, 128)?;
            charset("TransitiveTagKeys", key, tag_char, TAG_CHARS)?;
        }
        Ok(())
    }

    fn check_mfa_fields(&self) -> Result<(), ConfigError> {
        if let Some(serial) = &self.serial_number {
            check_serial_number(serial)?;
        }
        if let Some(code) = &self.token_code {
            if self.serial_number.is_none() {
                return Err(ConfigError::new(
                    "SerialNumber",
                    "is required with TokenCode: set the MFA device's ARN or serial",
                ));
            }
            mfa::check_token(code.expose())
                .map_err(|e| ConfigError::new("TokenCode", e.to_string()))?;
        }
        Ok(())
    }

    /// The query-protocol form fields, `TokenCode` last.
    fn form(&self, token_code: Option<&Secret>) -> String {
        let mut form = Form::new("AssumeRole", API_VERSION);
        form.push("RoleArn", &self.role_arn);
        let optional = [
            ("RoleSessionName", self.role_session_name.as_deref()),
            ("ExternalId", self.external_id.as_deref()),
            ("Policy", self.policy.as_deref()),
            ("SourceIdentity", self.source_identity.as_deref()),
            ("SerialNumber", self.serial_number.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                form.push(name, value);
            }
        }
        if let Some(duration) = self.duration {
            form.push("DurationSeconds", &duration.as_secs().to_string());
        }
        for (i, arn) in (1..).zip(&self.policy_arns) {
            form.push(&format!("PolicyArns.member.{i}.arn"), arn);
        }
        for (i, (key, value)) in (1..).zip(&self.tags) {
            form.push(&format!("Tags.member.{i}.Key"), key);
            form.push(&format!("Tags.member.{i}.Value"), value);
        }
        for (i, key) in (1..).zip(&self.transitive_tag_keys) {
            form.push(&format!("TransitiveTagKeys.member.{i}"), key);
        }
        for (i, (arn, assertion)) in (1..).zip(&self.provided_contexts) {
            form.push(&format!("ProvidedContexts.member.{i}.ProviderArn"), arn);
            form.push(
                &format!("ProvidedContexts.member.{i}.ContextAssertion"),
                assertion,
            );
        }
        if let Some(code) = token_code {
            form.push("TokenCode", code.expose());
        }
        form.finish()
    }
}

impl fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field("duration", &self.duration)
            .field("external_id", &self.external_id.as_ref().map(|_| "<set>"))
            .field("policy", &self.policy.as_ref().map(|_| "<set>"))
            .field("policy_arns", &self.policy_arns)
            .field("tags", &self.tags)
            .field("transitive_tag_keys", &self.transitive_tag_keys)
            .field("source_identity", &self.source_identity)
            .field("serial_number", &self.serial_number)
            .field("token_code", &self.token_code)
            .field("provided_contexts", &self.provided_contexts.len())
            .finish()
    }
}

/// `SerialNumber`, as `AssumeRole` and `GetSessionToken` take it.
fn check_serial_number(serial: &str) -> Result<(), ConfigError> {
    length("SerialNumber", serial, 9, 256)?;
    charset(
        "SerialNumber",
        serial,
        |c| name_char(c) || ":/".contains(c),
        "letters, digits and _+=/:,.@-",
    )
}

const TAG_CHARS: &str = "letters, digits, spaces and _.:/=+-@";

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: session tag keys and values.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

/// Where STS calls go: a region and the URL to post to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsEndpoint {
    region: String,
    uri: http::Uri,
}

impl StsEndpoint {
    /// The regional endpoint of `region`, or `endpoint_url` when given.
    /// Plain `http` is accepted only to a loopback address, since the answer
    /// carries credentials.
    pub fn resolve(region: &str, endpoint_url: Option<&str>) -> Result<Self, ConfigError> {
        crate::validate::region("region", region)?;
        let url = match endpoint_url {
            Some(url) => url.to_owned(),
            None => format!("https://sts.{region}.{}/", dns_suffix(region)),
        };
        let uri = parse_endpoint(&url)?;
        Ok(Self {
            region: region.to_owned(),
            uri,
        })
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The URL requests are posted to.
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// A signed query-protocol POST with `form` as its body.
    fn post(
        &self,
        form: String,
        signer: &Credentials,
        now: OffsetDateTime,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        let mut request = self.unsigned_post(form)?;
        sign_request(&mut request, signer, &self.region, SIGNING_NAME, now)?;
        Ok(request)
    }

    /// A query-protocol POST that carries its own proof of identity.
    fn unsigned_post(&self, form: String) -> Result<http::Request<Vec<u8>>, Error> {
        http::Request::post(self.uri.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.into_bytes())
            .map_err(|e| Error::Signing(e.to_string()))
    }
}

/// The DNS suffix of the partition a region belongs to.
fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eusc-") {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    }
}

fn parse_endpoint(url: &str) -> Result<http::Uri, ConfigError> {
    let invalid = |problem: String| ConfigError::new("endpoint_url", problem);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| invalid(format!("`{url}` is not a URL: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| invalid(format!("`{url}` has no host; use https://host[:port]/")))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback(host) => {}
        Some("http") => {
            return Err(invalid(format!(
                "`{url}` uses plain http to a non-loopback host; credentials would cross the network unencrypted, use https"
            )));
        }
        _ => return Err(invalid(format!("`{url}` must start with https://"))),
    }
    if uri.query().is_some() {
        return Err(invalid(format!("`{url}` must not have a query string")));
    }
    // An endpoint without a path posts to `/`.
    if uri.path().is_empty() {
        let mut parts = uri.into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        return http::Uri::from_parts(parts).map_err(|e| invalid(e.to_string()));
    }
    Ok(uri)
}

/// Whether `url` names a server on this machine: a test server.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(is_loopback))
        .unwrap_or(false)
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A signed `AssumeRole` request. `token_code` is the MFA code for this call.
pub(crate) fn assume_role_request(
    params: &AssumeRole,
    token_code: Option<&Secret>,
    signer: &Credentials,
    endpoint: &StsEndpoint,
    now: OffsetDateTime,
) -> Result<http::Request<Vec<u8>>, Error> {
    endpoint.post(params.form(token_code), signer, now)
}

/// An unsigned `AssumeRoleWithWebIdentity` request: the OIDC `token`
/// proves who asks.
pub(crate) fn web_identity_request(
    role_arn: &str,
    session_name: &str,
    token: &Secret,
    endpoint: &StsEndpoint,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut form = Form::new("AssumeRoleWithWebIdentity", API_VERSION);
    form.push("RoleArn", role_arn)
        .push("RoleSessionName", session_name)
        .push("WebIdentityToken", token.expose());
    endpoint.unsigned_post(form.finish())
}

/// The answer to `AssumeRole` (or `AssumeRoleWithWebIdentity`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AssumedRole {
    /// The temporary credentials.
    pub credentials: Credentials,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `<role id>:<session>`.
    pub assumed_role_id: String,
    /// The source identity, when one was set.
    pub source_identity: Option<String>,
    /// How full the packed session policy and tags are, in percent.
    pub packed_policy_size: Option<u32>,
}

/// Reads an `AssumeRole` answer: credentials on success, a
/// [`ServiceError`] for an `ErrorResponse`.
pub fn parse_assume_role(response: &http::Response<Vec<u8>>) -> Result<AssumedRole, Error> {
    parse_role_answer(response, "AssumeRole")
}

/// Reads an `AssumeRoleWithWebIdentity` answer.
pub(crate) fn parse_web_identity(response: &http::Response<Vec<u8>>) -> Result<AssumedRole, Error> {
    parse_role_answer(response, "AssumeRoleWithWebIdentity")
}

fn parse_role_answer(
    response: &http::Response<Vec<u8>>,
    action: &str,
) -> Result<AssumedRole, Error> {
    let doc = success_document(response, &format!("{action}Response"))?;
    let field = |name: &'static str| required(&doc, response, name);
    let packed_policy_size = doc
        .find(&format!("{action}Result/PackedPolicySize"))
        .map(|size| {
            size.parse().map_err(|_| {
                invalid(
                    response,
                    format!("PackedPolicySize `{size}` is not a number"),
                )
            })
        })
        .transpose()?;
    Ok(AssumedRole {
        credentials: credentials(&doc, response)?,
        arn: field("AssumedRoleUser/Arn")?.to_owned(),
        assumed_role_id: field("AssumedRoleUser/AssumedRoleId")?.to_owned(),
        source_identity: doc
            .find(&format!("{action}Result/SourceIdentity"))
            .map(str::to_owned),
        packed_policy_size,
    })
}

/// The temporary credentials of a successful answer whose root is `root`.
fn parse_credentials(response: &http::Response<Vec<u8>>, root: &str) -> Result<Credentials, Error> {
    credentials(&success_document(response, root)?, response)
}

fn credentials(doc: &Document, response: &http::Response<Vec<u8>>) -> Result<Credentials, Error> {
    let field = |name: &'static str| required(doc, response, name);
    let expiration = field("Credentials/Expiration")?;
    let expiration = OffsetDateTime::parse(expiration, &Rfc3339).map_err(|e| {
        invalid(
            response,
            format!("Credentials/Expiration `{expiration}` is not an RFC 3339 time: {e}"),
        )
    })?;
    Ok(Credentials::new(
        field("Credentials/AccessKeyId")?,
        field("Credentials/SecretAccessKey")?,
        Some(Secret::new(field("Credentials/SessionToken")?)),
        Some(expiration),
    ))
}

/// Who a set of credentials belongs to, from `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallerIdentity {
    /// The caller's ARN; for a role session,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// The unique id of the caller.
    pub user_id: String,
    /// The account id.
    pub account: String,
}

/// A signed `GetCallerIdentity` request made with `credentials`.
pub fn caller_identity_request(
    endpoint: &StsEndpoint,
    credentials: &Credentials,
    now: OffsetDateTime,
) -> Result<http::Request<Vec<u8>>, Error> {
    let form = Form::new("GetCallerIdentity", API_VERSION).finish();
    endpoint.post(form, credentials, now)
}

/// Reads a `GetCallerIdentity` answer.
pub fn parse_caller_identity(response: &http::Response<Vec<u8>>) -> Result<CallerIdentity, Error> {
    let doc = success_document(response, "GetCallerIdentityResponse")?;
    Ok(CallerIdentity {
        arn: required(&doc, response, "GetCallerIdentityResult/Arn")?.to_owned(),
        user_id: required(&doc, response, "GetCallerIdentityResult/UserId")?.to_owned(),
        account: required(&doc, response, "GetCallerIdentityResult/Account")?.to_owned(),
    })
}

/// The document of a successful answer whose root is `root`; any error
/// answer becomes the matching [`Error`].
fn success_document(response: &http::Response<Vec<u8>>, root: &str) -> Result<Document, Error> {
    let doc = Document::parse(response.body());
    let status = response.status();
    match doc {
        Ok(doc) if status.is_success() && doc.root() == root => Ok(doc),
        Ok(doc) if doc.find("Error/Code").is_some() => Err(service_error(&doc, response)),
        Ok(doc) => Err(invalid(
            response,
            format!("expected <{root}>, got <{}>", doc.root()),
        )),
        Err(problem) => Err(invalid(response, problem)),
    }
}

fn service_error(doc: &Document, response: &http::Response<Vec<u8>>) -> Error {
    let request_id = doc
        .find("RequestId")
        .map(str::to_owned)
        .or_else(|| header(response, "x-amzn-requestid"));
    Error::Service(ServiceError::new(
        SERVICE,
        response.status().as_u16(),
        ErrorCode::parse(doc.find("Error/Code").unwrap_or_default()),
        doc.find("Error/Message").unwrap_or_default(),
        request_id,
    ))
}

fn required<'d>(
    doc: &'d Document,
    response: &http::Response<Vec<u8>>,
    path: &'static str,
) -> Result<&'d str, Error> {
    match doc.find(path) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(invalid(response, format!("the answer has no {path}"))),
    }
}

fn invalid(response: &http::Response<Vec<u8>>, problem: String) -> Error {
    Error::InvalidResponse {
        service: SERVICE,
        status: response.status().as_u16(),
        problem,
    }
}

fn header(response: &http::Response<Vec<u8>>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
