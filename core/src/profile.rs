//! The AWS shared `config` and `credentials` files: a strict parser, and
//! the profiles and SSO sessions they define.
//!
//! The format is the one the AWS CLI and SDKs read: `[default]`,
//! `[profile name]` and `[sso-session name]` sections in `config`, `[name]`
//! sections in `credentials`; `key = value` properties (keys are
//! case-insensitive); full-line comments starting with `#` or `;`, and
//! comments after a section header; an indented line continues the value
//! above it, or, under a property with an empty value, is a sub-property
//! (`s3 =` then `  max_concurrent_requests = 10`). Where a profile is in
//! both files, the `credentials` file's properties win, as in the AWS CLI.
//!
//! Anything else (a property outside a section, a line without `=`, an
//! unclosed `[`) is a [`ProfileError`] that names the file and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// One shared file's text and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct ProfileFile {
    /// How errors name the file (its path).
    pub path: String,
    /// Its content.
    pub text: String,
}

impl fmt::Debug for ProfileFile {
    // The text holds secret keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Which of the two shared files a text is: their section names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]`, `[profile name]`, `[sso-session name]`.
    Config,
    /// `~/.aws/credentials`: `[name]`.
    Credentials,
}

/// A line of a shared file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}, line {line}: {problem}")]
pub struct ProfileError {
    /// The file.
    pub file: String,
    /// The line, counting from 1.
    pub line: usize,
    /// What is wrong, and what to write instead.
    pub problem: String,
}

/// A property's value, and its sub-properties if it has them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Property {
    /// The value (empty for a property that only has sub-properties).
    pub value: String,
    /// Sub-properties, by lower-case name.
    pub sub: BTreeMap<String, String>,
}

/// A profile or SSO session: its properties by lower-case name.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Section {
    properties: BTreeMap<String, Property>,
}

/// Properties that make a profile a source of credentials, in the order
/// the chain looks at them.
const CREDENTIAL_KEYS: [&str; 5] = [
    "role_arn",
    "sso_session",
    "sso_start_url",
    "aws_access_key_id",
    "credential_process",
];

/// Properties whose values are secret: redacted in `Debug`.
const SECRET_KEYS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

impl Section {
    /// The value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The property `key` with its sub-properties.
    pub fn property(&self, key: &str) -> Option<&Property> {
        self.properties.get(key)
    }

    /// The property that gives this profile credentials of its own, as
    /// the default chain reads a profile: a role, SSO, keys or
    /// `credential_process`; `None` for a profile of settings only.
    pub fn credentials_property(&self) -> Option<&'static str> {
        CREDENTIAL_KEYS
            .into_iter()
            .find(|key| self.get(key).is_some())
    }

    fn set(&mut self, key: String, property: Property) {
        self.properties.insert(key, property);
    }

    fn merge(&mut self, other: Section) {
        self.properties.extend(other.properties);
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, property) in &self.properties {
            if SECRET_KEYS.contains(&key.as_str()) {
                map.entry(key, &"<redacted>");
            } else {
                map.entry(key, &property.value);
            }
        }
        map.finish()
    }
}

/// The profiles and SSO sessions of a `config` and a `credentials` file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Section>,
    sso_sessions: BTreeMap<String, Section>,
}

impl ProfileSet {
    /// Parses both files (either may be absent) and merges their profiles.
    pub fn parse(
        config: Option<&ProfileFile>,
        credentials: Option<&ProfileFile>,
    ) -> Result<Self, ProfileError> {
        let mut set = ProfileSet::default();
        for (file, kind) in [
            (config, FileKind::Config),
            (credentials, FileKind::Credentials),
        ] {
            let Some(file) = file else { continue };
            for (header, section) in sections(file)? {
                match classify(&header, kind) {
                    Name::Profile(name) => set.profiles.entry(name).or_default().merge(section),
                    Name::SsoSession(name) => {
                        set.sso_sessions.entry(name).or_default().merge(section)
                    }
                    Name::Other => {}
                }
            }
        }
        Ok(set)
    }

    /// The profile `name`.
    pub fn profile(&self, name: &str) -> Option<&Section> {
        self.profiles.get(name)
    }

    /// The `[sso-session name]` section.
    pub fn sso_session(&self, name: &str) -> Option<&Section> {
        self.sso_sessions.get(name)
    }

    /// Whether the files define no profile at all.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

enum Name {
    Profile(String),
    SsoSession(String),
    /// `[services x]`, or a config-file section without `profile `: not a
    /// profile (the AWS CLI ignores them too).
    Other,
}

fn classify(header: &str, kind: FileKind) -> Name {
    match kind {
        FileKind::Credentials => Name::Profile(header.to_owned()),
        FileKind::Config if header == "default" => Name::Profile(header.to_owned()),
        FileKind::Config => {
            let (word, rest) = header
                .split_once(char::is_whitespace)
                .unwrap_or((header, ""));
            let rest = rest.trim();
            match word {
                "profile" if !rest.is_empty() => Name::Profile(rest.to_owned()),
                "sso-session" if !rest.is_empty() => Name::SsoSession(rest.to_owned()),
                _ => Name::Other,
            }
        }
    }
}

/// The sections of one file, in order, with their properties.
fn sections(file: &ProfileFile) -> Result<Vec<(String, Section)>, ProfileError> {
    let mut parser = Parser {
        file,
        sections: Vec::new(),
        last_key: None,
    };
    for (index, line) in file.text.lines().enumerate() {
        parser.line(index + 1, line)?;
    }
    Ok(parser.sections)
}

struct Parser<'a> {
    file: &'a ProfileFile,
    sections: Vec<(String, Section)>,
    /// The property the next indented line continues.
    last_key: Option<String>,
}

impl Parser<'_> {
    fn line(&mut self, number: usize, line: &str) -> Result<(), ProfileError> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            return Ok(());
        }
        let error = |problem: String| ProfileError {
            file: self.file.path.clone(),
            line: number,
            problem,
        };
        if trimmed.starts_with('[') {
            let header = header(trimmed).map_err(error)?;
            self.sections.push((header, Section::default()));
            self.last_key = None;
            return Ok(());
        }
        if line.starts_with(char::is_whitespace) {
            return self.continuation(trimmed).map_err(error);
        }
        let (key, value) = property(trimmed).map_err(error)?;
        let Some((_, section)) = self.sections.last_mut() else {
            return Err(error(format!(
                "`{key}` is outside any section; put it under a [profile name] header"
            )));
        };
        section.set(
            key.clone(),
            Property {
                value,
                sub: BTreeMap::new(),
            },
        );
        self.last_key = Some(key);
        Ok(())
    }

    /// An indented line: a sub-property under an empty value, else more of
    /// the value above.
    fn continuation(&mut self, trimmed: &str) -> Result<(), String> {
        let (Some(key), Some((_, section))) = (&self.last_key, self.sections.last_mut()) else {
            return Err("an indented line continues no property; remove the indentation".into());
        };
        let Some(property) = section.properties.get_mut(key) else {
            return Err("an indented line continues no property".into());
        };
        if property.value.is_empty() {
            let (sub_key, sub_value) = self::property(trimmed)?;
            property.sub.insert(sub_key, sub_value);
        } else {
            property.value.push('\n');
            property.value.push_str(trimmed);
        }
        Ok(())
    }
}

/// `[ name ]`, with an optional comment after it.
fn header(line: &str) -> Result<String, String> {
    let Some(end) = line.find(']') else {
        return Err(format!(
            "`{line}` opens a section header but never closes it with `]`"
        ));
    };
    let after = line[end + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return Err("text after a section header; put it on its own line".into());
    }
    let name = line[1..end].trim();
    if name.is_empty() {
        return Err("a section header names nothing: write [profile name]".into());
    }
    Ok(name.to_owned())
}

/// `key = value`: the key lower-cased, both trimmed.
fn property(line: &str) -> Result<(String, String), String> {
    let Some((key, value)) = line.split_once('=') else {
        // The line is not echoed: it may hold a secret key.
        return Err("the line is not `key = value` (nor a section header or a comment)".into());
    };
    let key = key.trim();
    if key.is_empty() {
        return Err("the line has no key before `=`".into());
    }
    Ok((key.to_ascii_lowercase(), value.trim().to_owned()))
}

/// The home directory: `HOME`, else `USERPROFILE`, else `HOMEDRIVE` and
/// `HOMEPATH` (Windows), as the AWS SDKs look for it.
pub(crate) fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .or_else(|| Some(format!("{}{}", var("HOMEDRIVE")?, var("HOMEPATH")?)))
        .map(PathBuf::from)
}

/// Where the shared files are: `AWS_CONFIG_FILE` and
/// `AWS_SHARED_CREDENTIALS_FILE` (a leading `~/` is the home directory),
/// else `~/.aws/config` and `~/.aws/credentials`. `None` for a file whose
/// place cannot be known (no home directory).
pub fn file_paths(env: &dyn Fn(&str) -> Option<String>) -> [Option<PathBuf>; 2] {
    let home = home(env);
    let path = |variable: &str, default: &str| match env(variable).filter(|v| !v.is_empty()) {
        Some(path) => match path.strip_prefix("~/") {
            Some(rest) => home.as_ref().map(|h| h.join(rest)),
            None => Some(PathBuf::from(path)),
        },
        None => home.as_ref().map(|h| h.join(default)),
    };
    [
        path("AWS_CONFIG_FILE", ".aws/config"),
        path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
    ]
}

#[cfg(test)]
mod tests;
