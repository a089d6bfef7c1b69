//! The credential endpoint `exec` serves to its child: HTTP on 127.0.0.1,
//! answering `GET /credentials` with a random per-run token in
//! `Authorization` with the session's current credentials, in the format of
//! the ECS container endpoint that every AWS SDK reads.
//!
//! One thread runs an event loop over every connection (mio): a client has
//! one deadline for its whole request and answer, at most
//! [`MAX_CONNECTIONS`] are held (the oldest gives way to a new one), and a
//! failing `accept` makes room or backs off. So clients that connect and
//! idle, or trickle their request, cost a descriptor for a few seconds and
//! no CPU, and never delay a request that is sent whole. Credentials are
//! read inline: the eager session has them at hand but in the last minute
//! before expiry, when every client waits for the same refresh anyway.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use refresh_session_blocking::{RefreshableSession, Secret};
use refresh_session_core::chain::container;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

/// The path credentials are served on.
const PATH: &str = "/credentials";
/// A request head is never larger; SDKs send a few hundred bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client has from connecting to reading its whole answer.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Connections held at once; past it, the oldest is closed to make room,
/// so that idle or trickling clients can delay no one for long.
const MAX_CONNECTIONS: usize = 256;
/// The longest pause after `accept` fails (out of descriptors, say).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
const LISTENER: Token = Token(0);

/// A running endpoint. It serves until the process ends.
#[derive(Debug)]
pub(crate) struct Endpoint {
    url: String,
    token: Secret,
}

impl Endpoint {
    /// Binds 127.0.0.1 on a free port and serves `session` from a thread:
    /// one event loop over every connection, each with one deadline for
    /// its whole request and answer.
    pub(crate) fn start(session: RefreshableSession) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}{PATH}", listener.local_addr()?);
        let token = random_token()?;
        let mut server = Server::new(
            mio::net::TcpListener::from_std(listener),
            session,
            token.clone(),
        )?;
        thread::Builder::new()
            .name("credential-endpoint".into())
            .spawn(move || server.run())?;
        Ok(Self { url, token })
    }

    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub(crate) fn token(&self) -> &Secret {
        &self.token
    }
}

/// 32 random bytes, hex-encoded.
fn random_token() -> io::Result<Secret> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system random generator failed"))?;
    Ok(Secret::new(refresh_session_core::hex::encode(&bytes)))
}

/// One client: its request head so far, then its answer.
struct Connection {
    stream: TcpStream,
    deadline: Instant,
    head: Vec<u8>,
    /// The answer and how much of it is written.
    answer: Option<(Secret, usize)>,
}

/// The event loop.
struct Server {
    poll: Poll,
    listener: mio::net::TcpListener,
    session: RefreshableSession,
    token: Secret,
    connections: HashMap<Token, Connection>,
    next: usize,
    /// Set while `accept` is backed off: when to try again, and the pause
    /// that led there.
    accept_paused: Option<(Instant, Duration)>,
}

impl Server {
    fn new(
        mut listener: mio::net::TcpListener,
        session: RefreshableSession,
        token: Secret,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Self {
            poll,
            listener,
            session,
            token,
            connections: HashMap::new(),
            next: 1,
            accept_paused: None,
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .wake_at()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                eprintln!("refresh-session: the credential endpoint stopped: {error}");
                return;
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(),
                    token => self.progress(token),
                }
            }
            self.expire(Instant::now());
        }
    }

    /// The next deadline, or the end of the accept pause.
    fn wake_at(&self) -> Option<Instant> {
        let deadlines = self.connections.values().map(|c| c.deadline);
        deadlines
            .chain(self.accept_paused.map(|(until, _)| until))
            .min()
    }

    /// Accepts every pending connection, closing the oldest when full.
    /// When `accept` fails (out of descriptors, most likely), the oldest
    /// connection is closed to make room; with none left to close, accepting
    /// pauses, twice as long each time.
    fn accept(&mut self) {
        if self
            .accept_paused
            .is_some_and(|(until, _)| Instant::now() < until)
        {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.accept_paused = None;
                    self.admit(stream);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if !self.connections.is_empty() => self.close_oldest(),
                Err(_) => {
                    let pause = self
                        .accept_paused
                        .map_or(Duration::from_millis(10), |(_, p)| {
                            (p * 2).min(MAX_ACCEPT_BACKOFF)
                        });
                    self.accept_paused = Some((Instant::now() + pause, pause));
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream) {
        if self.connections.len() >= MAX_CONNECTIONS {
            self.close_oldest();
        }
        let token = Token(self.next);
        self.next += 1;
        if self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
            .is_err()
        {
            return;
        }
        let connection = Connection {
            stream,
            deadline: Instant::now() + REQUEST_DEADLINE,
            head: Vec::new(),
            answer: None,
        };
        self.connections.insert(token, connection);
        // Data may have come with the connection: edge-triggered, it
        // would not be reported again.
        self.progress(token);
    }

    fn close_oldest(&mut self) {
        let oldest = self
            .connections
            .iter()
            .min_by_key(|(_, c)| c.deadline)
            .map(|(t, _)| *t);
        if let Some(token) = oldest {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut connection) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut connection.stream);
        }
    }

    /// Closes every connection past its deadline, and resumes accepting
    /// when its pause is over.
    fn expire(&mut self, now: Instant) {
        let late: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for token in late {
            self.close(token);
        }
        if self.accept_paused.is_some_and(|(until, _)| now >= until) {
            self.accept_paused = self.accept_paused.map(|(_, pause)| (now, pause));
            self.accept();
        }
    }

    /// Reads what the client sent, answers a whole head, writes what it
    /// can of the answer; closes the connection when done or broken.
    fn progress(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.answer.is_none() {
            match read_head(connection) {
                Ok(true) => {
                    let (status, body) = match complete(&connection.head) {
                        true => answer(&connection.head, &self.session, &self.token),
                        false => (400, error_body("BadRequest", "not an HTTP request")),
                    };
                    connection.answer = Some((response(status, body.expose()), 0));
                }
                Ok(false) => return,
                Err(_) => return self.close(token),
            }
        }
        match write_answer(connection) {
            Ok(true) | Err(_) => self.close(token),
            Ok(false) => {
                let _ = self.poll.registry().reregister(
                    &mut connection.stream,
                    token,
                    Interest::WRITABLE,
                );
            }
        }
    }
}

/// Reads what is there; `true` once the head is whole or too large to be
/// one (answered as a bad request).
fn read_head(connection: &mut Connection) -> io::Result<bool> {
    let mut chunk = [0u8; 1024];
    loop {
        if complete(&connection.head) || connection.head.len() > MAX_HEAD_BYTES {
            return Ok(true);
        }
        match connection.stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => connection.head.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// Whether `head` holds a whole request head.
fn complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Writes what the socket takes; `true` once all of it is written.
fn write_answer(connection: &mut Connection) -> io::Result<bool> {
    let Some((answer, written)) = &mut connection.answer else {
        return Ok(false);
    };
    let bytes = answer.expose().as_bytes();
    while *written < bytes.len() {
        match connection.stream.write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// The status and body for a request head.
fn answer(head: &[u8], session: &RefreshableSession, token: &Secret) -> (u16, Secret) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return (400, error_body("BadRequest", "not an HTTP request"));
    }
    if request.path.map(|p| p.split('?').next()) != Some(Some(PATH)) {
        return (
            404,
            error_body("NotFound", "credentials are at /credentials"),
        );
    }
    if request.method != Some("GET") {
        return (405, error_body("MethodNotAllowed", "use GET"));
    }
    let authorization = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .map(|h| h.value);
    match authorization {
        None => return (401, error_body("Unauthorized", "no Authorization token")),
        Some(value) if !same(value, token.expose().as_bytes()) => {
            return (403, error_body("Forbidden", "wrong Authorization token"));
        }
        Some(_) => {}
    }
    match session.credentials() {
        Ok(credentials) => (
            200,
            container::render(&credentials, OffsetDateTime::now_utc()),
        ),
        Err(error) => (
            500,
            error_body("CredentialsUnavailable", &error.to_string()),
        ),
    }
}

/// Compares in time independent of where the inputs differ.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The container endpoint's error body.
fn error_body(code: &str, message: &str) -> Secret {
    Secret::new(serde_json::json!({ "code": code, "message": message }).to_string())
}

/// The whole HTTP answer (it holds credentials).
fn response(status: u16, body: &str) -> Secret {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    Secret::new(format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}
