//! Getting credentials from a [`SourcePlan`] on a refresh: a state machine
//! that asks for a file, a process, an HTTP exchange or an MFA code, is
//! told the answers, retries failed exchanges as the session's retry policy
//! says, then assumes the profile's roles in turn.
//!
//! What outlives a refresh lives in [`ChainSource`]: the credentials, reused
//! while they stay valid for long enough (a role profile's session is not
//! assumed again on every refresh of the session built on it), IMDS's
//! session token, and the SSO login this process renewed last.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::command::{CommandOutput, CommandSpec};
use crate::credentials::Credentials;
use crate::error::{Error, TransportError};
use crate::fetch::{Attempts, Context};
use crate::saturating;
use crate::secret::Secret;
use crate::sso_token::SsoToken;
use crate::sts;

use super::imds::{self, ImdsToken};
use super::plan::{Base, SourcePlan};
use super::sso::CachedLogin;
use super::{ChainError, Skipped, SourceKind, container, process};

/// Credentials are fetched again once they have less than this left: time
/// for the calls signed with them to reach AWS, retries included.
const REUSE_MARGIN: Duration = Duration::from_secs(120);

/// The chain as a session holds it.
#[derive(Debug)]
pub(crate) struct ChainSource {
    plan: SourcePlan,
    cached: Option<Arc<Credentials>>,
    imds_token: Option<ImdsToken>,
    sso_renewed: Option<SsoToken>,
    /// The first role's MFA session, reused while it lasts.
    mfa_session: Option<Arc<Credentials>>,
}

impl ChainSource {
    pub(crate) fn new(plan: SourcePlan) -> Self {
        Self {
            plan,
            cached: None,
            imds_token: None,
            sso_renewed: None,
            mfa_session: None,
        }
    }

    /// How logs name the source.
    pub(crate) fn description(&self) -> &str {
        &self.plan.description
    }

    /// The MFA devices the profile's roles need codes for.
    pub(crate) fn mfa_serials(&self) -> impl Iterator<Item = &str> {
        self.plan.hops.iter().filter_map(|hop| hop.mfa_serial())
    }

    /// Whether a profile role signs with an MFA session.
    pub(crate) fn has_mfa_session(&self) -> bool {
        self.plan.hops.iter().any(|hop| hop.mfa_session.is_some())
    }

    /// Whether getting the credentials calls STS (web identity, or a
    /// profile's roles).
    pub(crate) fn calls_sts(&self) -> bool {
        !self.plan.hops.is_empty() || matches!(self.plan.base, Base::WebIdentity { .. })
    }

    fn reusable(&self, now: OffsetDateTime) -> Option<Arc<Credentials>> {
        self.cached.clone().filter(|c| {
            c.expiration()
                .is_none_or(|at| saturating::add(now, REUSE_MARGIN) < at)
        })
    }
}

/// What a run needs from its driver.
pub(crate) enum Ask {
    ReadFile(String),
    /// Replace the file (privately, atomically) with this.
    WriteFile(String, Secret),
    RunProcess(CommandSpec),
    Transmit(http::Request<Vec<u8>>),
    MfaToken(String),
}

/// An answer to an [`Ask`].
pub(crate) enum Told {
    File(Result<Vec<u8>, String>),
    Written(Result<(), String>),
    Process(Result<CommandOutput, String>),
    Response(http::Response<Vec<u8>>),
    Transport(TransportError),
    MfaToken(Result<Secret, Error>),
}

/// Where a run stands after a step.
pub(crate) enum Step {
    Ask(Ask),
    /// Nothing to do until [`SourceRun::wake_at`].
    Wait,
    Done(Result<Arc<Credentials>, Error>),
}

/// What a run waits for, with what it has so far.
#[derive(Debug)]
enum Stage {
    WebIdentityToken,
    WebIdentity {
        token: Secret,
    },
    Process,
    SsoCache,
    /// Renewing a login near its end.
    SsoRenew {
        cached: Box<SsoToken>,
    },
    /// Writing the renewed login back to the token cache.
    SsoWrite {
        token: Secret,
    },
    Sso {
        token: Secret,
    },
    ContainerToken,
    Container {
        token: Option<Secret>,
    },
    ImdsToken,
    /// `fresh`: the token was just issued, so a refusal is not its age.
    ImdsRole {
        fresh: bool,
    },
    ImdsCredentials {
        role: String,
        fresh: bool,
    },
    HopToken {
        signer: Arc<Credentials>,
    },
    /// The code for a profile role's MFA session.
    SessionTokenCode {
        signer: Arc<Credentials>,
    },
    SessionToken {
        signer: Arc<Credentials>,
        code: Secret,
    },
    Hop {
        signer: Arc<Credentials>,
        code: Option<Secret>,
    },
    Finished,
}

/// One refresh's progress through the chain.
#[derive(Debug)]
pub(crate) struct SourceRun {
    stage: Stage,
    /// The role being assumed, counting from 0.
    hop: usize,
    attempts: Option<Attempts>,
    retry_at: Option<OffsetDateTime>,
    /// The MFA session was renewed after STS refused it: once a run.
    mfa_renewed: bool,
}

impl SourceRun {
    /// Starts a run: reused credentials at once, or the first need.
    pub(crate) fn start(source: &mut ChainSource, cx: Context<'_>) -> (Self, Step) {
        let mut run = Self {
            stage: Stage::Finished,
            hop: 0,
            attempts: None,
            retry_at: None,
            mfa_renewed: false,
        };
        let step = match source.reusable(cx.now) {
            Some(credentials) => Step::Done(Ok(credentials)),
            None => run.begin(source, cx),
        };
        (run, step)
    }

    /// When the run wants [`on_timeout`](Self::on_timeout), if ever.
    pub(crate) fn wake_at(&self) -> Option<OffsetDateTime> {
        self.retry_at
    }

    /// The retry time has come: send the exchange again.
    pub(crate) fn on_timeout(&mut self, source: &mut ChainSource, cx: Context<'_>) -> Option<Step> {
        match self.retry_at {
            Some(at) if cx.now >= at => {
                self.retry_at = None;
                Some(self.resend(source, cx))
            }
            _ => None,
        }
    }

    fn begin(&mut self, source: &mut ChainSource, cx: Context<'_>) -> Step {
        match &source.plan.base {
            Base::Static(credentials) => self.next_hop(source, Arc::new(credentials.clone()), cx),
            Base::WebIdentity { token_file, .. } => {
                self.stage = Stage::WebIdentityToken;
                Step::Ask(Ask::ReadFile(token_file.clone()))
            }
            Base::Process(line) => {
                self.stage = Stage::Process;
                Step::Ask(Ask::RunProcess(process::command(line)))
            }
            Base::Sso(sso) => {
                self.stage = Stage::SsoCache;
                Step::Ask(Ask::ReadFile(sso.cache_file.clone()))
            }
            Base::Container(endpoint) => match &endpoint.token {
                Some(container::Token::File(path)) => {
                    self.stage = Stage::ContainerToken;
                    Step::Ask(Ask::ReadFile(path.clone()))
                }
                Some(container::Token::Value(token)) => {
                    let token = Some(token.clone());
                    self.send(source, Stage::Container { token }, cx)
                }
                None => self.send(source, Stage::Container { token: None }, cx),
            },
            Base::Imds(_) => match source.imds_token.as_ref().filter(|t| t.is_valid(cx.now)) {
                Some(_) => self.send(source, Stage::ImdsRole { fresh: false }, cx),
                None => self.send(source, Stage::ImdsToken, cx),
            },
            Base::Nothing => Step::Done(Err(not_found(source, None))),
        }
    }

    /// Feeds an answer in; `None` if the run is not waiting for it.
    pub(crate) fn on(
        &mut self,
        source: &mut ChainSource,
        told: Told,
        cx: Context<'_>,
    ) -> Option<Step> {
        let stage = std::mem::replace(&mut self.stage, Stage::Finished);
        let step = match (stage, told) {
            (Stage::WebIdentityToken, Told::File(read)) => match read {
                Ok(bytes) => match token_text(&bytes) {
                    Some(token) => self.send(source, Stage::WebIdentity { token }, cx),
                    None => fail(SourceKind::WebIdentity, "the token file is empty".into()),
                },
                Err(e) => fail(
                    SourceKind::WebIdentity,
                    format!("the token file could not be read: {e}"),
                ),
            },
            (Stage::Process, Told::Process(ran)) => match ran {
                Ok(output) => self.base_result(source, process::parse(&output), cx),
                Err(e) => fail(SourceKind::Process, format!("the command {e}")),
            },
            (Stage::SsoCache, Told::File(read)) => {
                let Base::Sso(sso) = &source.plan.base else {
                    return None;
                };
                let login = match read {
                    Ok(bytes) => sso.cached_login(&bytes, source.sso_renewed.as_ref(), cx.now),
                    Err(e) => Err(sso.login_again(&format!(
                        "there is no cached SSO token at {} ({e})",
                        sso.cache_file
                    ))),
                };
                match login {
                    Ok(CachedLogin::Use(token)) => self.send(source, Stage::Sso { token }, cx),
                    Ok(CachedLogin::Renew(cached)) => {
                        self.send(source, Stage::SsoRenew { cached }, cx)
                    }
                    Err(error) => Step::Done(Err(error)),
                }
            }
            (Stage::SsoWrite { token }, Told::Written(written)) => {
                if let Err(problem) = written {
                    tracing::warn!(target: "refresh_session", %problem, "the renewed SSO login could not be written to the token cache");
                }
                self.send(source, Stage::Sso { token }, cx)
            }
            (Stage::ContainerToken, Told::File(read)) => match read {
                Ok(bytes) => {
                    let token = token_text(&bytes);
                    self.send(source, Stage::Container { token }, cx)
                }
                Err(e) => fail(
                    SourceKind::Container,
                    format!("the authorization token file could not be read: {e}"),
                ),
            },
            (Stage::HopToken { signer }, Told::MfaToken(code)) => match code {
                Ok(code) => self.send(
                    source,
                    Stage::Hop {
                        signer,
                        code: Some(code),
                    },
                    cx,
                ),
                Err(error) => Step::Done(Err(error)),
            },
            (Stage::SessionTokenCode { signer }, Told::MfaToken(code)) => match code {
                Ok(code) => self.send(source, Stage::SessionToken { signer, code }, cx),
                Err(error) => Step::Done(Err(error)),
            },
            (stage, Told::Response(response)) if stage.awaits_response() => {
                self.on_response(source, stage, &response, cx)
            }
            (Stage::SsoRenew { cached }, Told::Transport(error)) => {
                self.renewal_failed(source, cached, error.into(), cx)
            }
            (stage, Told::Transport(error)) if stage.awaits_response() => {
                self.stage = stage;
                self.retry_or_fail(source, error.into(), cx)
            }
            (stage, _) => {
                self.stage = stage;
                return None;
            }
        };
        Some(step)
    }

    fn on_response(
        &mut self,
        source: &mut ChainSource,
        stage: Stage,
        response: &http::Response<Vec<u8>>,
        cx: Context<'_>,
    ) -> Step {
        if let Stage::SsoRenew { cached } = stage {
            return match crate::oidc::parse_token(response, cx.now) {
                Ok(token) => self.renewed(source, cached.renewed(token)),
                Err(error) => self.renewal_failed(source, cached, error, cx),
            };
        }
        let parsed = match (&stage, &source.plan.base) {
            (Stage::WebIdentity { .. }, _) => sts::parse_web_identity(response).map(|a| a.credentials),
            (Stage::Sso { .. }, Base::Sso(sso)) => sso.parse(response),
            (Stage::Container { .. }, _) => container::parse(response),
            (Stage::ImdsToken, _) => match imds::parse_token(response, cx.now) {
                Ok(token) => {
                    source.imds_token = Some(token);
                    return self.send(source, Stage::ImdsRole { fresh: true }, cx);
                }
                Err(error) => Err(error),
            },
            (Stage::ImdsRole { fresh: false } | Stage::ImdsCredentials { fresh: false, .. }, _)
                if imds::token_refused(response) =>
            {
                source.imds_token = None;
                return self.send(source, Stage::ImdsToken, cx);
            }
            (Stage::ImdsRole { fresh }, _) => match imds::parse_role(response) {
                Ok(role) => {
                    let fresh = *fresh;
                    return self.send(source, Stage::ImdsCredentials { role, fresh }, cx);
                }
                Err(error) => Err(error),
            },
            (Stage::ImdsCredentials { .. }, _) => imds::parse_credentials(response),
            (Stage::SessionToken { .. }, _) => match sts::parse_session_token(response) {
                Ok(session) => {
                    tracing::info!(target: "refresh_session", expiration = ?session.expiration(), "profile MFA session started");
                    let session = Arc::new(session);
                    source.mfa_session = Some(session.clone());
                    let hop = Stage::Hop {
                        signer: session,
                        code: None,
                    };
                    return self.send(source, hop, cx);
                }
                Err(error) => Err(error),
            },
            (Stage::Hop { .. }, _) => sts::parse_assume_role(response).map(|assumed| {
                let profile = &source.plan.hops[self.hop].profile;
                tracing::debug!(target: "refresh_session", %profile, arn = %assumed.arn, "profile role assumed");
                assumed.credentials
            }),
            _ => return Step::Done(Err(Error::Signing("an answer the chain did not ask for".into()))),
        };
        self.stage = stage;
        match parsed {
            Ok(credentials) if matches!(self.stage, Stage::Hop { .. }) => {
                self.hop += 1;
                self.next_hop(source, Arc::new(credentials), cx)
            }
            Ok(credentials) => self.next_hop(source, Arc::new(credentials), cx),
            Err(error) if self.mfa_session_refused(source, &error) => {
                // Once: a new MFA session, with one new code.
                source.mfa_session = None;
                self.mfa_renewed = true;
                self.begin(source, cx)
            }
            Err(error) => self.retry_or_fail(source, error, cx),
        }
    }

    /// Whether STS refused the MFA session that signed this hop as stale,
    /// the first time this run.
    fn mfa_session_refused(&self, source: &ChainSource, error: &Error) -> bool {
        let signed_by_session = matches!(&self.stage, Stage::Hop { .. })
            && source.plan.hops[self.hop].mfa_session.is_some();
        let stale = crate::rejection::Rejection::of(error).is_some();
        signed_by_session && stale && !self.mfa_renewed
    }

    /// A renewed SSO login: kept, written back to the token cache (the
    /// AWS CLI and every SDK read it), then used.
    fn renewed(&mut self, source: &mut ChainSource, login: SsoToken) -> Step {
        let Base::Sso(sso) = &source.plan.base else {
            return Step::Done(Err(Error::Signing("an SSO renewal without SSO".into())));
        };
        tracing::info!(target: "refresh_session", expires_at = %login.expires_at, "SSO login renewed");
        let write = Ask::WriteFile(sso.cache_file.clone(), login.render());
        self.stage = Stage::SsoWrite {
            token: login.access_token.clone(),
        };
        source.sso_renewed = Some(login);
        Step::Ask(write)
    }

    /// Renewing the login failed: retried as any exchange; then the cached
    /// token while it lasts, else logging in again.
    fn renewal_failed(
        &mut self,
        source: &mut ChainSource,
        cached: Box<SsoToken>,
        error: Error,
        cx: Context<'_>,
    ) -> Step {
        self.stage = Stage::SsoRenew { cached };
        if let Some(delay) = self.attempts.as_mut().and_then(|a| a.retry(&error, cx)) {
            if delay.is_zero() {
                return self.resend(source, cx);
            }
            self.retry_at = Some(saturating::add(cx.now, delay));
            return Step::Wait;
        }
        let Stage::SsoRenew { cached } = std::mem::replace(&mut self.stage, Stage::Finished) else {
            return Step::Done(Err(error));
        };
        let Base::Sso(sso) = &source.plan.base else {
            return Step::Done(Err(error));
        };
        if cached.is_valid(cx.now) {
            tracing::warn!(target: "refresh_session", %error, "renewing the SSO login failed; using its token while it lasts");
            return self.send(
                source,
                Stage::Sso {
                    token: cached.access_token,
                },
                cx,
            );
        }
        Step::Done(Err(sso.login_again(&format!(
            "the login expired at {} and renewing it failed ({error})",
            cached.expires_at
        ))))
    }

    /// The base source's result: on to the roles, or the error.
    fn base_result(
        &mut self,
        source: &mut ChainSource,
        result: Result<Credentials, Error>,
        cx: Context<'_>,
    ) -> Step {
        match result {
            Ok(credentials) => self.next_hop(source, Arc::new(credentials), cx),
            Err(error) => Step::Done(Err(error)),
        }
    }

    /// Assumes the next role with `signer`, or finishes with it.
    fn next_hop(
        &mut self,
        source: &mut ChainSource,
        signer: Arc<Credentials>,
        cx: Context<'_>,
    ) -> Step {
        let Some(hop) = source.plan.hops.get(self.hop) else {
            self.stage = Stage::Finished;
            source.cached = Some(signer.clone());
            return Step::Done(Ok(signer));
        };
        if let Some(params) = &hop.mfa_session {
            let live = source.mfa_session.clone().filter(|session| {
                session
                    .expiration()
                    .is_none_or(|at| saturating::add(cx.now, REUSE_MARGIN) < at)
            });
            return match live {
                Some(session) => self.send(
                    source,
                    Stage::Hop {
                        signer: session,
                        code: None,
                    },
                    cx,
                ),
                None => {
                    let serial = params.serial_number().to_owned();
                    self.stage = Stage::SessionTokenCode { signer };
                    Step::Ask(Ask::MfaToken(serial))
                }
            };
        }
        match hop.params.mfa_serial() {
            Some(serial) => {
                let serial = serial.to_owned();
                self.stage = Stage::HopToken { signer };
                Step::Ask(Ask::MfaToken(serial))
            }
            None => self.send(source, Stage::Hop { signer, code: None }, cx),
        }
    }

    /// Starts the exchange `stage` stands for.
    fn send(&mut self, source: &mut ChainSource, stage: Stage, cx: Context<'_>) -> Step {
        self.stage = stage;
        self.attempts = Some(Attempts::first(cx));
        self.resend(source, cx)
    }

    /// Sends the current stage's request, signed now where it is signed.
    fn resend(&mut self, source: &mut ChainSource, cx: Context<'_>) -> Step {
        match self.request(source, cx) {
            Ok(request) => Step::Ask(Ask::Transmit(request)),
            Err(error) => Step::Done(Err(self.failure(source, error))),
        }
    }

    fn request(
        &self,
        source: &ChainSource,
        cx: Context<'_>,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        let endpoint = || cx.endpoint.as_ref().map_err(|e| Error::from(e.clone()));
        let imds_token = || {
            source
                .imds_token
                .as_ref()
                .ok_or_else(|| Error::Signing("no IMDS token".into()))
        };
        match (&self.stage, &source.plan.base) {
            (
                Stage::WebIdentity { token },
                Base::WebIdentity {
                    role_arn,
                    session_name,
                    ..
                },
            ) => sts::web_identity_request(role_arn, session_name, token, endpoint()?),
            (Stage::Sso { token }, Base::Sso(sso)) => sso.request(token),
            (Stage::SsoRenew { cached }, Base::Sso(sso)) => sso.renewal_request(cached, cx.now),
            (Stage::Container { token }, Base::Container(endpoint)) => {
                endpoint.request(token.as_ref())
            }
            (Stage::ImdsToken, Base::Imds(imds)) => Ok(imds.token_request()),
            (Stage::ImdsRole { .. }, Base::Imds(imds)) => Ok(imds.role_request(imds_token()?)),
            (Stage::ImdsCredentials { role, .. }, Base::Imds(imds)) => {
                Ok(imds.credentials_request(imds_token()?, role))
            }
            (Stage::Hop { signer, code }, _) => {
                let hop = &source.plan.hops[self.hop];
                sts::assume_role_request(&hop.params, code.as_ref(), signer, endpoint()?, cx.now)
            }
            (Stage::SessionToken { signer, code }, _) => {
                let hop = &source.plan.hops[self.hop];
                let params = hop
                    .mfa_session
                    .as_ref()
                    .ok_or_else(|| Error::Signing("no MFA session to ask for".into()))?;
                sts::session_token_request(params, code, signer, endpoint()?, cx.now)
            }
            (stage, _) => Err(Error::Signing(format!(
                "the chain has no request for {stage:?}"
            ))),
        }
    }

    fn retry_or_fail(&mut self, source: &mut ChainSource, error: Error, cx: Context<'_>) -> Step {
        let delay = self.attempts.as_mut().and_then(|a| a.retry(&error, cx));
        match delay {
            Some(delay) if delay.is_zero() => self.resend(source, cx),
            Some(delay) => {
                self.retry_at = Some(saturating::add(cx.now, delay));
                Step::Wait
            }
            None => Step::Done(Err(self.failure(source, error))),
        }
    }

    /// The error a run ends with: IMDS is the last resort, so its failure
    /// lists every source tried.
    fn failure(&self, source: &ChainSource, error: Error) -> Error {
        match source.plan.base {
            Base::Imds(_) => not_found(source, Some(&error)),
            _ => error,
        }
    }
}

impl Stage {
    fn awaits_response(&self) -> bool {
        matches!(
            self,
            Stage::WebIdentity { .. }
                | Stage::Sso { .. }
                | Stage::SsoRenew { .. }
                | Stage::Container { .. }
                | Stage::ImdsToken
                | Stage::ImdsRole { .. }
                | Stage::ImdsCredentials { .. }
                | Stage::SessionToken { .. }
                | Stage::Hop { .. }
        )
    }
}

fn not_found(source: &ChainSource, imds: Option<&Error>) -> Error {
    let mut tried = source.plan.passed_over.clone();
    if let Some(error) = imds {
        tried.push(Skipped {
            kind: SourceKind::Imds,
            reason: error.to_string(),
        });
    }
    Error::Chain(ChainError::NotFound(tried))
}

fn fail(kind: SourceKind, problem: String) -> Step {
    Step::Done(Err(Error::Chain(ChainError::Failed { kind, problem })))
}

/// A token file's content, trimmed; `None` if empty or not text.
fn token_text(bytes: &[u8]) -> Option<Secret> {
    std::str::from_utf8(bytes)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

#[cfg(test)]
mod tests;
