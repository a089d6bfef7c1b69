//! What a session was resolved from: every environment variable the
//! resolution read (set or not) and the shared files it parsed, digested.
//! Two sessions built from the same configuration with the same
//! fingerprint read the same inputs, so they get the same credentials: a
//! disk cache keys its entries with it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::profile::ProfileFile;

/// A SHA-256 digest of a session's inputs. The inputs include secrets
/// (keys in variables and files); the digest does not reveal them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", crate::hex::encode(&self.0))
    }
}

/// An environment lookup that remembers what was looked up.
pub(crate) struct Recorder<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    reads: RefCell<BTreeMap<String, Option<String>>>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            env,
            reads: RefCell::default(),
        }
    }

    /// The variable `name`, as `env` has it.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        self.reads
            .borrow_mut()
            .insert(name.to_owned(), value.clone());
        value
    }

    /// The digest of the variables read so far and of `files`.
    pub(crate) fn fingerprint(&self, files: &[Option<ProfileFile>; 2]) -> Fingerprint {
        let mut digest = Sha256::new();
        // Length-prefixed, so that no two inputs run together alike.
        let mut put = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        };
        for (name, value) in self.reads.borrow().iter() {
            put(name.as_bytes());
            match value {
                Some(value) => put(value.as_bytes()),
                None => put(b"\xff unset"),
            }
        }
        for file in files {
            match file {
                Some(file) => {
                    put(file.path.as_bytes());
                    put(file.text.as_bytes());
                }
                None => put(b"\xff absent"),
            }
        }
        Fingerprint(digest.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(vars: &[(&str, &str)], read: &[&str], config: Option<&str>) -> Fingerprint {
        let env = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let recorder = Recorder::new(&env);
        for name in read {
            recorder.var(name);
        }
        let file = config.map(|text| ProfileFile {
            path: "/home/me/.aws/config".into(),
            text: text.into(),
        });
        recorder.fingerprint(&[file, None])
    }

    #[test]
    fn only_what_was_read_counts_and_every_read_counts() {
        let read = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"];
        let base = fingerprint(&[("AWS_PROFILE", "dev")], &read, Some("[default]"));
        assert_eq!(
            base,
            fingerprint(
                &[("AWS_PROFILE", "dev"), ("AWS_PAGER", "less")],
                &read,
                Some("[default]")
            ),
            "a variable never read"
        );
        for other in [
            fingerprint(
                &[("AWS_PROFILE", "dev"), ("AWS_DEFAULT_PROFILE", "prod")],
                &read,
                Some("[default]"),
            ),
            fingerprint(&[("AWS_PROFILE", "")], &read, Some("[default]")),
            fingerprint(&[("AWS_PROFILE", "dev")], &read, Some("[default]\n")),
            fingerprint(&[("AWS_PROFILE", "dev")], &read, None),
        ] {
            assert_ne!(base, other);
        }
    }
}
