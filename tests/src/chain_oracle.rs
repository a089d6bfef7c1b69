//! botocore as an independent oracle for the default credential chain
//! (`python/resolve_credentials.py`): given the same environment and
//! shared files, what boto3 resolves.

use std::collections::BTreeMap;

use serde_json::json;

use crate::moto::run_python;

/// What botocore resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The access key id.
    pub access_key: String,
    /// The caller's ARN, when asked for.
    pub arn: Option<String>,
}

/// Resolves credentials as boto3 does with `env` as the whole AWS
/// environment (and `HOME`), for `profile` if named; `whoami` also calls
/// `GetCallerIdentity`. The error is botocore's.
pub fn botocore_resolve(
    env: &BTreeMap<String, String>,
    profile: Option<&str>,
    whoami: bool,
) -> Result<Resolved, String> {
    let job = json!({ "env": env, "profile": profile, "whoami": whoami });
    let stdout = run_python("resolve_credentials.py", &[], job.to_string().as_bytes());
    let answer: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON");
    if let Some(error) = answer["error"].as_str() {
        return Err(error.to_owned());
    }
    Ok(Resolved {
        access_key: answer["access_key"].as_str().expect("a key").to_owned(),
        arn: answer["arn"].as_str().map(str::to_owned),
    })
}
