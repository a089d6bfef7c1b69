//! Secret text: secret access keys, session tokens and MFA codes.
//!
//! A [`Secret`] prints as `<redacted>` in `Debug` and `Display`, so it cannot
//! reach a log line or an error message by accident, and its bytes are
//! overwritten when it is dropped. Reading it takes an explicit
//! [`Secret::expose`].
//!
//! Dependencies are another way in: `aws-sigv4` traces canonical requests
//! (session token included) and `ureq` traces the bytes it sends and
//! receives. [`muted`] runs such calls with tracing switched off for the
//! current thread.

use std::fmt;

use zeroize::Zeroize;

/// A string that is never printed and is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`; the caller's `String` moves in, no copy is left behind.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret text, for the one place that has to send or sign with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Runs `f` with tracing switched off on this thread, so that a
/// dependency's TRACE events about a request (a canonical request, wire
/// bytes) cannot carry its secrets into the logs. `log` records bridged into
/// tracing are switched off too.
pub fn muted<T>(f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(&tracing::Dispatch::none(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.expose(), "wJalrXUtnFEMI/K7MDENG");
    }
}
