//! The user's Python callables as the session's hooks. They run on the
//! refresh thread, which takes the GIL for the call only; an exception
//! they raise becomes the refresh's error (the exception kept inside it),
//! never a hang.

use pyo3::prelude::*;
use refresh_session_blocking::{BoxError, CustomCredentials};

/// Calls the package's wrapper of a custom credentials method, which
/// returns `(access_key, secret_key, token, expiry_time)` with the expiry
/// as RFC 3339 text.
pub(crate) fn custom(provider: Py<PyAny>) -> impl Fn() -> Result<CustomCredentials, BoxError> {
    move || {
        Python::attach(|py| {
            let (access_key, secret_key, token, expiry): (String, String, Option<String>, String) =
                provider.bind(py).call0()?.extract()?;
            let mut credentials = CustomCredentials::new()
                .access_key_id(access_key)
                .secret_access_key(secret_key)
                .expiration_rfc3339(expiry);
            if let Some(token) = token {
                credentials = credentials.session_token(token);
            }
            Ok(credentials)
        })
        .map_err(|error: PyErr| BoxError::from(error))
    }
}

/// Calls the package's wrapper of an MFA token provider with the device's
/// serial number; it returns the code.
pub(crate) fn mfa(provider: Py<PyAny>) -> impl Fn(&str) -> Result<String, BoxError> {
    move |serial| {
        Python::attach(|py| provider.bind(py).call1((serial,))?.extract::<String>())
            .map_err(|error: PyErr| BoxError::from(error))
    }
}
