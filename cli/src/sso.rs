//! `refresh-session sso login`: the device login of an SSO profile or
//! `[sso-session]`, told to the person at the terminal (standard error),
//! with a spinner while they confirm and, with `--browser`, the page
//! opened for them.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};

use refresh_session_blocking::{ConfigError, Error, LoginEvent, sso_login};
use refresh_session_core::profile::ProfileSet;
use refresh_session_core::sso_token::SsoLogin;
use refresh_session_io::profile_files;

use crate::args::SessionArgs;

/// The spinner's frames.
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Logs in for `--sso-session`, else for the profile's SSO configuration.
pub(crate) fn login(
    args: &SessionArgs,
    sso_session: Option<&str>,
    browser: bool,
) -> Result<i32, Error> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let [config, credentials] = profile_files(&env)?;
    let profiles =
        ProfileSet::parse(config.as_ref(), credentials.as_ref()).map_err(ConfigError::from)?;
    let target = match sso_session {
        Some(session) => SsoLogin::of_session(&profiles, session, &env)?,
        None => {
            let profile = args
                .profile
                .clone()
                .or_else(|| env("AWS_PROFILE"))
                .unwrap_or_else(|| "default".to_owned());
            SsoLogin::of_profile(&profiles, &profile, &env)?
        }
    };
    let endpoint_url = env("AWS_ENDPOINT_URL_SSO_OIDC");
    let terminal = std::io::stderr().is_terminal();
    let mut frame = 0;
    let token = sso_login(&target, endpoint_url.as_deref(), |event| match event {
        LoginEvent::Confirm {
            verification_uri,
            verification_uri_complete,
            user_code,
        } => {
            eprintln!(
                "refresh-session: to log in to {}, open {verification_uri} and confirm the code {user_code}",
                target.start_url
            );
            if browser {
                open(verification_uri_complete.unwrap_or(verification_uri));
            }
        }
        LoginEvent::Waiting if terminal => {
            frame = (frame + 1) % SPINNER.len();
            eprint!("\r{} waiting for the confirmation ", SPINNER[frame]);
            let _ = std::io::stderr().flush();
        }
        _ => {}
    })?;
    if terminal {
        eprint!("\r");
    }
    eprintln!(
        "refresh-session: logged in to {}; the token is in {} until {}{}",
        target.start_url,
        target.cache_file.display(),
        token.expires_at,
        match token.refresh_token {
            Some(_) => ", and renews itself",
            None => "",
        }
    );
    Ok(0)
}

/// Opens `url` in the user's browser: `$BROWSER`, else the desktop's
/// opener. Failing to is a warning: the URL is on the screen.
fn open(url: &str) {
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".to_owned()
            } else {
                "xdg-open".to_owned()
            }
        });
    let started = Command::new(&opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        // Reaped aside: a browser may run until it is closed, and the
        // login polls meanwhile.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(error) => {
            eprintln!("refresh-session: warning: `{opener}` could not open the page: {error}")
        }
    }
}
