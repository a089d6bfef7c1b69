//! The package's exceptions, one per kind of Rust error, and the mapping.
//! An exception a user's callable raised travels inside the Rust error and
//! comes back as the new exception's `__cause__`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use refresh_session_blocking::Error;
use refresh_session_blocking::error::find_source;

create_exception!(
    refresh_session,
    RefreshSessionError,
    PyException,
    "Every error refresh-session raises."
);
create_exception!(
    refresh_session,
    ConfigurationError,
    RefreshSessionError,
    "The session's configuration cannot work; the message says what to fix."
);
create_exception!(
    refresh_session,
    CredentialError,
    RefreshSessionError,
    "No credentials could be had: the provider, the MFA code, the source \
     credentials or the default chain failed, or refreshes are backing off."
);
create_exception!(
    refresh_session,
    ConnectionError,
    RefreshSessionError,
    "The request got no answer (connection, TLS, timeout)."
);
create_exception!(
    refresh_session,
    RequestError,
    RefreshSessionError,
    "AWS answered with an error, or with an answer that could not be read."
);

/// Adds the exception types to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("RefreshSessionError", py.get_type::<RefreshSessionError>())?;
    module.add("ConfigurationError", py.get_type::<ConfigurationError>())?;
    module.add("CredentialError", py.get_type::<CredentialError>())?;
    module.add("ConnectionError", py.get_type::<ConnectionError>())?;
    module.add("RequestError", py.get_type::<RequestError>())
}

/// The exception for `error`, with the Rust message, and with the Python
/// exception behind it (a user's callable raised) as its cause.
pub(crate) fn to_python(py: Python<'_>, error: &Error) -> PyErr {
    let message = error.to_string();
    let exception = match error {
        Error::Config(_) => ConfigurationError::new_err(message),
        Error::Transport(_) => ConnectionError::new_err(message),
        Error::Service(_) | Error::InvalidResponse { .. } | Error::Signing(_) => {
            RequestError::new_err(message)
        }
        _ => CredentialError::new_err(message),
    };
    if let Some(cause) = find_source::<PyErr>(error) {
        exception.set_cause(py, Some(cause.clone_ref(py)));
    }
    exception
}
