//! Whether `exec`'s command would take its credentials from somewhere else:
//! every AWS SDK reads its default profile (a role, SSO, keys,
//! `credential_process`) before the container endpoint, so a default
//! profile with credentials in the command's shared files wins over ours.

use refresh_session_core::profile::{ProfileFile, ProfileSet};
use refresh_session_io::profile_files;

/// A shared file whose default profile has credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shadowing {
    /// The file.
    pub(crate) file: String,
    /// The property that gives the profile its credentials.
    pub(crate) key: &'static str,
}

impl std::fmt::Display for Shadowing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the command's default profile in {} has {}: AWS SDKs use it before the \
             credential endpoint, so the command would not use these credentials; \
             move it to a named profile",
            self.file, self.key
        )
    }
}

/// What shadows the endpoint for a command run in `env`, if anything; a
/// file that cannot be read or parsed shadows nothing we can name.
pub(crate) fn find(env: &dyn Fn(&str) -> Option<String>) -> Option<Shadowing> {
    let [config, credentials] = profile_files(env).ok()?;
    [(config, None), (None, credentials)]
        .into_iter()
        .find_map(|(config, credentials)| in_file(config.as_ref(), credentials.as_ref()))
}

fn in_file(config: Option<&ProfileFile>, credentials: Option<&ProfileFile>) -> Option<Shadowing> {
    let file = config.or(credentials)?;
    let profiles = ProfileSet::parse(config, credentials).ok()?;
    let key = profiles.profile("default")?.credentials_property()?;
    Some(Shadowing {
        file: file.path.clone(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> Option<ProfileFile> {
        Some(ProfileFile {
            path: path.into(),
            text: text.into(),
        })
    }

    #[test]
    fn a_default_profile_with_credentials_is_named_with_its_file() {
        let config = file(
            "/c",
            "[default]\nregion = eu-west-1\n[profile dev]\nrole_arn = x\n",
        );
        assert_eq!(in_file(config.as_ref(), None), None, "only a region");
        let config = file("/c", "[default]\nsso_session = corp\n");
        assert_eq!(
            in_file(config.as_ref(), None),
            Some(Shadowing {
                file: "/c".into(),
                key: "sso_session"
            })
        );
        let credentials = file("/k", "[default]\naws_access_key_id = AKIA\n");
        assert_eq!(
            in_file(None, credentials.as_ref()).map(|s| s.file),
            Some("/k".into())
        );
        let credentials = file("/k", "[dev]\naws_access_key_id = AKIA\n");
        assert_eq!(in_file(None, credentials.as_ref()), None, "not default");
    }
}
