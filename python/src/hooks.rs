//! The user's Python callables as the session's hooks. They run on the
//! refresh thread, which takes the GIL for the call only; an exception
//! they raise becomes the refresh's error (the exception kept inside it),
//! never a hang.

use std::collections::HashMap;

use pyo3::prelude::*;
use refresh_session_blocking::{BoxError, CustomCredentials};

/// Calls the package's wrapper of a custom credentials method, which
/// returns boto3-refresh-session's dict (`access_key`, `secret_key`,
/// `token`, `expiry_time` as text); the engine checks the fields.
pub(crate) fn custom(provider: Py<PyAny>) -> impl Fn() -> Result<CustomCredentials, BoxError> {
    move || {
        let fields: HashMap<String, Option<String>> =
            Python::attach(|py| provider.bind(py).call0()?.extract())
                .map_err(|error: PyErr| BoxError::from(error))?;
        let given = fields
            .iter()
            .filter_map(|(key, value)| Some((key.as_str(), value.as_deref()?)));
        Ok(CustomCredentials::from_fields(given)?)
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
