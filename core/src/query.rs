//! Form bodies of the AWS query protocol (STS, IAM), encoded byte for byte
//! as botocore encodes them: ASCII letters, digits and `_.-~` as they are,
//! space as `+`, everything else as `%XX` of its UTF-8 bytes.
//!
//! AWS signs the bytes it receives, so any valid encoding works there; but
//! emulators such as moto re-encode the parsed form the botocore way before
//! checking the signature, and a different choice (a bare `*`, say) makes
//! a correct request fail with `SignatureDoesNotMatch`.

use std::fmt::Write;

/// A query-protocol request body.
pub(crate) struct Form(String);

impl Form {
    /// A body for `action` of API `version`.
    pub(crate) fn new(action: &str, version: &str) -> Self {
        let mut form = Self(String::new());
        form.push("Action", action);
        form.push("Version", version);
        form
    }

    /// Appends `name=value`.
    pub(crate) fn push(&mut self, name: &str, value: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        encode(&mut self.0, name);
        self.0.push('=');
        encode(&mut self.0, value);
        self
    }

    /// The encoded body.
    pub(crate) fn finish(self) -> String {
        self.0
    }
}

fn encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            // Writing to a String cannot fail.
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_python_quote_plus() {
        // Expected values from Python: urllib.parse.urlencode({...}).
        let mut form = Form::new("AssumeRole", "2011-06-15");
        form.push("Policy", r#"{"Action":"s3:*"}"#)
            .push("Tags.member.1.Key", "cost center")
            .push("X", "a~b/c+d&é");
        assert_eq!(
            form.finish(),
            "Action=AssumeRole&Version=2011-06-15\
             &Policy=%7B%22Action%22%3A%22s3%3A%2A%22%7D\
             &Tags.member.1.Key=cost+center\
             &X=a~b%2Fc%2Bd%26%C3%A9"
        );
    }
}
