//! The default credential chain, without an SDK and without IO: where a
//! session's base credentials come from when the builder sets none.
//!
//! When the session is built, the plan (`plan.rs`) picks the
//! source from the environment and the shared files, in the AWS SDKs'
//! order: keys in the environment; web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`); the profile (static
//! keys, `credential_process`, SSO, web identity, and `role_arn` with
//! `source_profile` or `credential_source`, chained); container
//! credentials; IMDSv2. On each refresh, a run (`run.rs`) gets
//! credentials from it by asking the driver to read a file, run a process
//! or send a request, and assumes the profile's roles in turn.

use std::fmt;

pub mod container;
pub(crate) mod imds;
pub(crate) mod plan;
pub mod process;
pub(crate) mod run;
pub(crate) mod sso;

/// A source of base credentials in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceKind {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// `AssumeRoleWithWebIdentity` with a token file.
    WebIdentity,
    /// A profile of the shared `config` and `credentials` files.
    Profile,
    /// A profile's `credential_process`.
    Process,
    /// IAM Identity Center (SSO), through the token cache.
    Sso,
    /// The container credential endpoint (ECS, EKS Pod Identity).
    Container,
    /// The EC2 instance metadata service, version 2.
    Imds,
}

impl SourceKind {
    /// How messages name the source.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Environment => "environment",
            SourceKind::WebIdentity => "web identity",
            SourceKind::Profile => "profile",
            SourceKind::Process => "credential_process",
            SourceKind::Sso => "SSO",
            SourceKind::Container => "container credentials",
            SourceKind::Imds => "IMDS",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A source the chain passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The source.
    pub kind: SourceKind,
    /// Why it did not apply.
    pub reason: String,
}

/// Why the chain produced no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No source applied: every one tried, and why it was passed over.
    #[error("no credentials found; tried: {}", list(.0))]
    NotFound(Vec<Skipped>),
    /// A source applied but failed in a way of its own (the HTTP and STS
    /// failures are [`Error`](crate::Error)'s other variants).
    #[error("{kind}: {problem}")]
    Failed {
        /// The source.
        kind: SourceKind,
        /// What went wrong and what to do.
        problem: String,
    },
}

fn list(tried: &[Skipped]) -> String {
    tried
        .iter()
        .map(|s| format!("{}: {}", s.kind, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
