//! Drives the MQTT clients the sessions return, in tests: on every
//! (re)connection subscribe to a topic, then publish to it, until the
//! message comes back from the broker; bounded in time, and in the
//! connection errors it rides out.

use std::time::{Duration, Instant};

use refresh_session_blocking::rumqttc::{self, Connection};
use refresh_session_blocking::rumqttc::{
    AsyncClient, Client, ConnectionError, Event, EventLoop, Packet, QoS,
};

/// The longest a round trip may take, reconnections included.
pub const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(20);
/// The pause after a connection error before the next attempt.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// How a round trip ended other than with the message back.
#[derive(Debug)]
pub enum Failure {
    /// A connection error, after `tolerated` were ridden out.
    Connection(Box<ConnectionError>),
    /// The message did not come back within [`ROUND_TRIP_LIMIT`].
    TimedOut,
}

/// The round trip's state: what to do after each event.
struct RoundTrip<'a> {
    topic: &'a str,
    payload: &'a [u8],
    errors_left: usize,
}

enum Step {
    Subscribe,
    Publish,
    Continue,
    Pause,
    Done,
    Fail(ConnectionError),
}

impl RoundTrip<'_> {
    fn on(&mut self, event: Result<Event, ConnectionError>) -> Step {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => Step::Subscribe,
            Ok(Event::Incoming(Packet::SubAck(_))) => Step::Publish,
            Ok(Event::Incoming(Packet::Publish(message)))
                if message.topic == self.topic && message.payload == self.payload =>
            {
                Step::Done
            }
            Ok(_) => Step::Continue,
            Err(error) if self.errors_left == 0 => Step::Fail(error),
            Err(_) => {
                self.errors_left -= 1;
                Step::Pause
            }
        }
    }
}

/// Subscribes to `topic` at the next connection, publishes `payload` to it,
/// and waits for it to come back, riding out `tolerated` connection errors.
pub fn round_trip(
    client: &Client,
    connection: &mut Connection,
    topic: &str,
    payload: &[u8],
    tolerated: usize,
) -> Result<(), Failure> {
    let mut state = RoundTrip {
        topic,
        payload,
        errors_left: tolerated,
    };
    let deadline = Instant::now() + ROUND_TRIP_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match connection.recv_timeout(left) {
            Ok(event) => event,
            Err(rumqttc::RecvTimeoutError::Timeout) => return Err(Failure::TimedOut),
            Err(rumqttc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::Connection(Box::new(ConnectionError::RequestsDone)));
            }
        };
        match state.on(event) {
            Step::Subscribe => client
                .subscribe(topic, QoS::AtLeastOnce)
                .expect("the request queue has room"),
            Step::Publish => client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .expect("the request queue has room"),
            Step::Continue => {}
            Step::Pause => std::thread::sleep(RECONNECT_PAUSE),
            Step::Done => return Ok(()),
            Step::Fail(error) => return Err(Failure::Connection(Box::new(error))),
        }
    }
}

/// [`round_trip`] for the async client.
pub async fn round_trip_async(
    client: &AsyncClient,
    event_loop: &mut EventLoop,
    topic: &str,
    payload: &[u8],
    tolerated: usize,
) -> Result<(), Failure> {
    let mut state = RoundTrip {
        topic,
        payload,
        errors_left: tolerated,
    };
    let deadline = tokio::time::Instant::now() + ROUND_TRIP_LIMIT;
    loop {
        let Ok(event) = tokio::time::timeout_at(deadline, event_loop.poll()).await else {
            return Err(Failure::TimedOut);
        };
        match state.on(event) {
            Step::Subscribe => client
                .subscribe(topic, QoS::AtLeastOnce)
                .await
                .expect("the request queue is open"),
            Step::Publish => client
                .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
                .await
                .expect("the request queue is open"),
            Step::Continue => {}
            Step::Pause => tokio::time::sleep(RECONNECT_PAUSE).await,
            Step::Done => return Ok(()),
            Step::Fail(error) => return Err(Failure::Connection(Box::new(error))),
        }
    }
}
