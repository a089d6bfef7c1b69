//! `_native.Session`: one Rust session behind a Python one.
//!
//! `credentials()` returns `(access_key, secret_key, token, expiry)` (the
//! expiry in seconds since the epoch) as one tuple per credential: while
//! the credential is fresh the same tuple comes back without releasing the
//! GIL, at the cost of a pointer comparison. A caller that must wait for a
//! refresh releases the GIL and wakes every tenth of a second to let Python
//! handle signals, so Ctrl-C interrupts the wait (the refresh goes on).

use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use refresh_session_blocking::{Credentials, Error, RefreshableSession};

use crate::mqtt::{MqttArgs, MqttConnection};
use crate::options::Options;
use crate::{SIGNAL_CHECK, errors};

/// A refreshable session.
#[pyclass(frozen, module = "refresh_session._native")]
pub(crate) struct Session {
    inner: RefreshableSession,
    /// The last credential handed out, and its Python tuple.
    last: Mutex<Option<(Arc<Credentials>, Py<PyTuple>)>>,
}

#[pymethods]
impl Session {
    /// Builds the session from the package's normalised options (an eager
    /// session fetches its first credential here, without the GIL).
    #[new]
    fn new(py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<Self> {
        let options: Options = options.extract()?;
        let builder = options
            .builder()
            .map_err(|error| errors::to_python(py, &error.into()))?;
        let inner = py
            .detach(|| builder.build())
            .map_err(|error| errors::to_python(py, &error))?;
        Ok(Self {
            inner,
            last: Mutex::new(None),
        })
    }

    /// `(access_key, secret_key, token, expiry)` valid now.
    fn credentials(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let credentials = match self.inner.fresh_credentials() {
            Some(credentials) => credentials,
            None => self.wait(py)?,
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, tuple)) = last.as_ref()
            && Arc::ptr_eq(cached, &credentials)
        {
            return Ok(tuple.clone_ref(py));
        }
        let tuple = to_tuple(py, &credentials)?;
        *last = Some((credentials, tuple.clone_ref(py)));
        Ok(tuple)
    }

    /// An MQTT connection over the session's identity, once the broker
    /// has acknowledged it.
    fn mqtt(&self, py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<MqttConnection> {
        let args: MqttArgs = options.extract()?;
        MqttConnection::open(py, &self.inner, &args)
    }

    /// STS `GetCallerIdentity` with the session's credentials:
    /// `{"UserId", "Account", "Arn"}`.
    fn whoami<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let identity = py
            .detach(|| self.inner.whoami())
            .map_err(|error| errors::to_python(py, &error))?;
        let dict = PyDict::new(py);
        dict.set_item("UserId", identity.user_id)?;
        dict.set_item("Account", identity.account)?;
        dict.set_item("Arn", identity.arn)?;
        Ok(dict)
    }
}

impl Session {
    /// Waits for a refresh without the GIL, in slices, handling signals in
    /// between: a `KeyboardInterrupt` ends the wait.
    fn wait(&self, py: Python<'_>) -> PyResult<Arc<Credentials>> {
        loop {
            let got: Result<Option<Arc<Credentials>>, Error> =
                py.detach(|| self.inner.credentials_within(SIGNAL_CHECK));
            match got {
                Ok(Some(credentials)) => return Ok(credentials),
                Ok(None) => py.check_signals()?,
                Err(error) => return Err(errors::to_python(py, &error)),
            }
        }
    }
}

fn to_tuple(py: Python<'_>, credentials: &Credentials) -> PyResult<Py<PyTuple>> {
    let expiry = credentials
        .expiration()
        .map(|at| at.unix_timestamp_nanos() as f64 / 1e9);
    let fields = (
        credentials.access_key_id(),
        credentials.secret_access_key().expose(),
        credentials.session_token().map(|token| token.expose()),
        expiry,
    );
    Ok(fields.into_pyobject(py)?.unbind())
}
