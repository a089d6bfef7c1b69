//! `credential-process`'s MFA session (`--mfa-session`), kept in the disk
//! cache beside the role credentials it signs for (the same private files,
//! the same locks), so that runs for several roles over a day ask for one
//! code. The roles are signed by a session whose credentials are the cached
//! MFA session's; when STS refuses those as expired (revoked, or expired
//! early), the run gets a new MFA session, with one new code, and caches it
//! instead; refused as unknown (the user's key deleted), the run fails and
//! the entry is dropped, so that the next run asks for a new one.

use std::sync::{Arc, Mutex, PoisonError};

use refresh_session_blocking::prelude::*;
use refresh_session_blocking::{Error, Rejection};
use refresh_session_core::fingerprint::Fingerprint;
use refresh_session_core::policy::RefreshPolicy;

use crate::args::SessionArgs;
use crate::cache::DiskCache;
use crate::session;

/// The MFA session the roles are signed by, and the fingerprint of what
/// its own session was built from (part of the roles' cache key).
pub(crate) struct CachedMfaSession {
    pub(crate) source: RefreshableSession,
    pub(crate) fingerprint: Fingerprint,
    key: String,
}

impl CachedMfaSession {
    /// The role could not be had with this MFA session: if STS refused it
    /// as stale, the cache no longer offers it.
    pub(crate) fn forget_if_refused(&self, disk: &DiskCache, error: &Error) {
        if Rejection::of(error).is_some() {
            disk.forget(&self.key);
        }
    }
}

/// The MFA session of `--mfa-session`, through `disk`; `None` without the
/// flag.
pub(crate) fn cached(
    args: &SessionArgs,
    disk: &Arc<DiskCache>,
) -> Result<Option<CachedMfaSession>, Error> {
    let Some(mfa_session) = session::mfa_session(args)? else {
        return Ok(None);
    };
    let fingerprint = mfa_session.fingerprint();
    let key = key(args, &fingerprint);
    let entry = key.clone();
    let disk = Arc::clone(disk);
    // The default windows: the MFA session is renewed only near its end.
    let policy = RefreshPolicy::new(None, None)?;
    // The key of the MFA session handed out last: asked again, the source
    // is asked because STS refused it (or it neared its end meanwhile).
    let handed: Mutex<Option<String>> = Mutex::new(None);
    let source = RefreshableSession::custom(move || {
        let mut handed = handed.lock().unwrap_or_else(PoisonError::into_inner);
        let fetch = || mfa_session.credentials().map(|c| (*c).clone());
        let credentials = match handed.take() {
            None => disk.through(&key, &policy, "MFA session", fetch)?,
            Some(refused) => {
                mfa_session.credentials_rejected(&refused, Rejection::Expired);
                let credentials = fetch()?;
                disk.replace(&key, &credentials, "MFA session");
                credentials
            }
        };
        *handed = Some(credentials.access_key_id().to_owned());
        Ok(CustomCredentials::from(credentials))
    })
    .build()?;
    Ok(Some(CachedMfaSession {
        source,
        fingerprint,
        key: entry,
    }))
}

/// What MFA sessions the same cache entry may serve: the device, the
/// duration, where STS is, and what the session read to find the user's
/// keys.
fn key(args: &SessionArgs, fingerprint: &Fingerprint) -> String {
    serde_json::json!({
        "mfa_session": args.serial_number,
        "duration": args.mfa_session.map(|d| d.as_secs()),
        "region": args.region,
        "endpoint_url": args.endpoint_url,
        "profile": args.profile,
        "fingerprint": refresh_session_core::hex::encode(fingerprint.as_bytes()),
    })
    .to_string()
}
