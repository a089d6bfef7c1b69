//! `refresh_session._native`: the Python extension under the
//! `refresh_session` package. It holds a blocking
//! [`RefreshableSession`](refresh_session_blocking::RefreshableSession) per
//! Python session, calls the user's Python callables (custom credentials,
//! MFA codes) from the refresh thread, and turns Rust errors into the
//! package's exceptions. The Python side (`refresh_session/__init__.py`)
//! turns boto3-refresh-session's keyword arguments into these calls and
//! plugs the session into botocore.

mod errors;
mod hooks;
mod mqtt;
mod options;
mod session;

use std::time::Duration;

use pyo3::prelude::*;

/// How long a caller waiting without the GIL (for a refresh, for the
/// broker) goes without letting Python handle signals such as Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<session::Session>()?;
    module.add_class::<mqtt::MqttConnection>()?;
    errors::register(module)
}
