//! The credential endpoint `exec` serves to its child: HTTP on 127.0.0.1,
//! answering `GET /credentials` with a random per-run token in
//! `Authorization` with the session's current credentials, in the format of
//! the ECS container endpoint that every AWS SDK reads.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use refresh_session_blocking::{RefreshableSession, Secret};
use refresh_session_core::chain::container;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

/// The path credentials are served on.
const PATH: &str = "/credentials";
/// A request head is never larger; SDKs send a few hundred bytes.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running endpoint. It serves until the process ends.
#[derive(Debug)]
pub(crate) struct Endpoint {
    url: String,
    token: Secret,
}

impl Endpoint {
    /// Binds 127.0.0.1 on a free port and serves `session` from a thread.
    pub(crate) fn start(session: RefreshableSession) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let url = format!("http://{}{PATH}", listener.local_addr()?);
        let token = random_token()?;
        let expected = token.clone();
        thread::Builder::new()
            .name("credential-endpoint".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let session = session.clone();
                    let expected = expected.clone();
                    // One thread per connection: a client that stalls
                    // holds up only itself.
                    let _ = thread::Builder::new()
                        .name("credential-request".into())
                        .spawn(move || serve(stream, &session, &expected));
                }
            })?;
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

fn serve(mut stream: TcpStream, session: &RefreshableSession, token: &Secret) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let (status, body) = match read_head(&mut stream) {
        Ok(head) => answer(&head, session, token),
        Err(_) => (400, error_body("BadRequest", "not an HTTP request")),
    };
    let _ = write_response(&mut stream, status, body.expose());
}

/// The request head, up to the blank line.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD_BYTES {
            return Err(io::Error::other("request head too large"));
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(head)
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

fn write_response(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
