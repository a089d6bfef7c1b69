//! `_native.MqttConnection`: an MQTT connection over an IoT session's
//! identity (mutual TLS) or a WebSocket signed with its credentials, driven
//! by a thread of its own. Messages go to the Python callbacks of the
//! matching subscriptions; after a drop the connection reconnects (rumqttc
//! does, on the next poll) and subscribes again.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use refresh_session_blocking::rumqttc::{
    self, Client, Connection, Event, Outgoing, Packet, Publish, QoS,
};
use refresh_session_blocking::{ConfigError, Mqtt, RefreshableSession};

use crate::{SIGNAL_CHECK, errors};

/// The pause before a lost connection is tried again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// `mqtt()`'s options, normalised by the package.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct MqttArgs {
    endpoint: String,
    port: Option<u16>,
    client_id: Option<String>,
    keep_alive: Option<u64>,
    clean_session: bool,
    websocket: bool,
    ca_file: Option<String>,
    ca_pem: Option<String>,
    timeout: f64,
}

impl MqttArgs {
    fn options(&self) -> Mqtt {
        let mut options = Mqtt::new(&self.endpoint).clean_session(self.clean_session);
        if self.websocket {
            options = options.websocket();
        }
        if let Some(port) = self.port {
            options = options.port(port);
        }
        if let Some(id) = &self.client_id {
            options = options.client_id(id);
        }
        if let Some(seconds) = self.keep_alive {
            options = options.keep_alive(Duration::from_secs(seconds));
        }
        if let Some(path) = &self.ca_file {
            options = options.ca_file(path);
        }
        if let Some(pem) = &self.ca_pem {
            options = options.ca_pem(pem);
        }
        options
    }
}

/// Where the connection is.
enum State {
    Connecting,
    Connected,
    /// It could not connect, or was disconnected.
    Ended(String),
}

/// What the connection's thread and its callers share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// (topic filter, QoS, callback).
    subscriptions: Mutex<Vec<(String, QoS, Py<PyAny>)>>,
}

impl Shared {
    fn set(&self, state: State) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
        self.changed.notify_all();
    }
}

/// A connection to an MQTT broker.
#[pyclass(frozen, module = "refresh_session._native")]
pub(crate) struct MqttConnection {
    client: Client,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl MqttConnection {
    /// Connects `session` as `args` say and waits (without the GIL, handling
    /// signals) for the broker's acknowledgement, at most `args.timeout`.
    pub(crate) fn open(
        py: Python<'_>,
        session: &RefreshableSession,
        args: &MqttArgs,
    ) -> PyResult<Self> {
        let (client, connection) = session
            .mqtt(args.options())
            .map_err(|error| errors::to_python(py, &error))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Connecting),
            changed: Condvar::new(),
            subscriptions: Mutex::new(Vec::new()),
        });
        let thread = {
            let (client, shared) = (client.clone(), Arc::clone(&shared));
            thread::Builder::new()
                .name("refresh-session-mqtt".into())
                .spawn(move || drive(connection, &client, &shared))
                .map_err(|e| errors::ConnectionError::new_err(format!("no MQTT thread: {e}")))?
        };
        let opened = Self {
            client,
            shared,
            thread: Mutex::new(Some(thread)),
        };
        let timeout = Duration::try_from_secs_f64(args.timeout).map_err(|_| {
            errors::to_python(
                py,
                &ConfigError::new("timeout", "is not a number of seconds").into(),
            )
        })?;
        opened.wait_connected(py, timeout)?;
        Ok(opened)
    }

    fn wait_connected(&self, py: Python<'_>, timeout: Duration) -> PyResult<()> {
        // A timeout past the end of `Instant` never expires.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let waited = py.detach(|| {
                let state = self
                    .shared
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let (state, _) = self
                    .shared
                    .changed
                    .wait_timeout_while(state, SIGNAL_CHECK, |s| matches!(s, State::Connecting))
                    .unwrap_or_else(PoisonError::into_inner);
                match &*state {
                    State::Connecting => None,
                    State::Connected => Some(Ok(())),
                    State::Ended(problem) => Some(Err(problem.clone())),
                }
            });
            match waited {
                Some(Ok(())) => return Ok(()),
                Some(Err(problem)) => {
                    return Err(errors::ConnectionError::new_err(format!(
                        "MQTT connection failed: {problem}"
                    )));
                }
                None if deadline.is_some_and(|deadline| Instant::now() >= deadline) => {
                    let _ = self.client.try_disconnect();
                    return Err(errors::ConnectionError::new_err(format!(
                        "the MQTT broker did not answer within {timeout:?}"
                    )));
                }
                None => py.check_signals()?,
            }
        }
    }
}

#[pymethods]
impl MqttConnection {
    /// Publishes `payload` on `topic`.
    #[pyo3(signature = (topic, payload, qos = 1, retain = false))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    ) -> PyResult<()> {
        let qos = quality(qos)?;
        py.detach(|| self.client.publish(topic, qos, retain, payload))
            .map_err(|e| errors::ConnectionError::new_err(format!("MQTT publish failed: {e}")))
    }

    /// Subscribes to `topic` (wildcards allowed); `callback(topic, payload)`
    /// is called, on the connection's thread, for each message.
    #[pyo3(signature = (topic, callback, qos = 1))]
    fn subscribe(
        &self,
        py: Python<'_>,
        topic: String,
        callback: Py<PyAny>,
        qos: u8,
    ) -> PyResult<()> {
        let qos = quality(qos)?;
        self.shared
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((topic.clone(), qos, callback));
        py.detach(|| self.client.subscribe(topic, qos))
            .map_err(|e| errors::ConnectionError::new_err(format!("MQTT subscribe failed: {e}")))
    }

    /// Disconnects and waits for the connection's thread to end.
    fn disconnect(&self, py: Python<'_>) {
        // An error means it is gone already.
        let _ = self.client.try_disconnect();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            py.detach(|| drop(thread.join()));
        }
    }
}

impl Drop for MqttConnection {
    fn drop(&mut self) {
        // The thread holds a client too: it ends at the disconnect.
        let _ = self.client.try_disconnect();
    }
}

fn quality(qos: u8) -> PyResult<QoS> {
    rumqttc::qos(qos)
        .map_err(|_| errors::ConfigurationError::new_err(format!("qos: {qos} is not 0, 1 or 2")))
}

/// The connection's thread: polls until disconnected; hands each message to
/// its callbacks; after a lost connection, pauses, reconnects and
/// subscribes again.
fn drive(mut connection: Connection, client: &Client, shared: &Shared) {
    let mut connected = false;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if connected {
                    resubscribe(client, shared);
                }
                connected = true;
                shared.set(State::Connected);
            }
            Ok(Event::Incoming(Packet::Publish(message))) => deliver(shared, &message),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                shared.set(State::Ended("disconnected".into()));
                return;
            }
            Ok(_) => {}
            Err(error) if !connected => {
                shared.set(State::Ended(error.to_string()));
                return;
            }
            Err(_) => thread::sleep(RECONNECT_PAUSE),
        }
    }
}

fn resubscribe(client: &Client, shared: &Shared) {
    let subscriptions = shared
        .subscriptions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for (filter, qos, _) in subscriptions.iter() {
        // Not the blocking call: this thread is the one that empties the
        // request queue.
        let _ = client.try_subscribe(filter.clone(), *qos);
    }
}

fn deliver(shared: &Shared, message: &Publish) {
    Python::attach(|py| {
        let callbacks: Vec<Py<PyAny>> = shared
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(filter, _, _)| rumqttc::matches(&message.topic, filter))
            .map(|(_, _, callback)| callback.clone_ref(py))
            .collect();
        for callback in callbacks {
            let payload = PyBytes::new(py, &message.payload);
            if let Err(error) = callback.call1(py, (message.topic.as_str(), payload)) {
                // Raised on the connection's thread: reported as Python
                // reports errors it cannot raise anywhere.
                error.write_unraisable(py, None);
            }
        }
    });
}
