//! A small HTTP/1.1 server on 127.0.0.1 for loopback test peers: one
//! thread per connection, keep-alive, `Content-Length` bodies, optional TLS
//! (with the client's certificate shown to the handler), and a handler that
//! decides the answer. Dropping the server stops and joins every thread it
//! started.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How often idle connection threads check whether the server stopped.
const IDLE_CHECK: Duration = Duration::from_millis(100);
/// Request heads and bodies larger than this are refused.
const MAX_REQUEST: usize = 1 << 20;

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, such as `/` or `/path?query`.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's certificate (DER), over TLS with client authentication.
    pub peer_certificate: Option<Vec<u8>>,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra headers (`Content-Length` is added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// How much of the answer is sent.
    pub delivery: Delivery,
}

/// How much of an answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// All of it.
    Complete,
    /// Nothing: the connection is closed instead.
    Reset,
    /// The head, promising the whole body, then half the body and a closed
    /// connection.
    Truncated,
}

impl Reply {
    /// An answer with `status`, a content type and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            delivery: Delivery::Complete,
        }
    }

    /// No answer: the connection closes.
    pub fn reset() -> Self {
        Self {
            delivery: Delivery::Reset,
            ..Self::new(500, "text/plain", Vec::new())
        }
    }

    /// The same answer, cut off halfway through its body.
    pub fn truncated(mut self) -> Self {
        self.delivery = Delivery::Truncated;
        self
    }

    /// The same answer, sent `delay` later.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay += delay;
        self
    }

    /// The same answer, its `Date` header `ahead` of the clock.
    pub fn dated_ahead(mut self, ahead: Duration) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("date"));
        let at = time::OffsetDateTime::now_utc() + ahead;
        let dated = refresh_session_core::harness::dated(http::Response::new(Vec::new()), at);
        if let Some(date) = dated.headers().get(http::header::DATE) {
            let date = date.to_str().unwrap_or_default().to_owned();
            self.headers.push(("date".to_owned(), date));
        }
        self
    }
}

impl From<http::Response<Vec<u8>>> for Reply {
    fn from(response: http::Response<Vec<u8>>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body,
            delay: Duration::ZERO,
            delivery: Delivery::Complete,
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Starts a plain-HTTP server on an ephemeral port of 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> io::Result<Self> {
        Self::start_with(None, handler)
    }

    /// Starts an HTTPS server with `config` (which may require client
    /// certificates) on an ephemeral port of 127.0.0.1.
    pub fn start_tls(
        config: Arc<ServerConfig>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        Self::start_with(Some(config), handler)
    }

    fn start_with(
        tls: Option<Arc<ServerConfig>>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let is_tls = tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = {
            let stop = stop.clone();
            let connections = connections.clone();
            thread::Builder::new()
                .name("loopback-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (stop, handler, tls) = (stop.clone(), handler.clone(), tls.clone());
                        let spawned = thread::Builder::new()
                            .name("loopback-conn".into())
                            .spawn(move || serve(stream, tls, &*handler, &stop));
                        if let Ok(handle) = spawned {
                            connections
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(handle);
                        }
                    }
                })?
        };
        Ok(Self {
            addr,
            tls: is_tls,
            stop,
            accept: Some(accept),
            connections,
        })
    }

    /// `http://127.0.0.1:<port>/`, or `https://...` over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let connections =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(|e| e.into_inner()));
        for connection in connections {
            let _ = connection.join();
        }
    }
}

fn serve(stream: TcpStream, tls: Option<Arc<ServerConfig>>, handler: &Handler, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(IDLE_CHECK)).is_err() {
        return;
    }
    let Some(config) = tls else {
        return exchange(BufReader::new(stream), None, handler, stop);
    };
    let Ok(connection) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(connection, stream);
    // A refused client certificate ends the connection here.
    if handshake(&mut tls, stop).is_err() {
        return;
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|certificate| certificate.to_vec());
    exchange(BufReader::new(tls), peer, handler, stop);
}

fn handshake(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    stop: &AtomicBool,
) -> io::Result<()> {
    while tls.conn.is_handshaking() {
        if stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("server stopped"));
        }
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if is_idle_check(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Answers requests on one connection until it closes.
fn exchange<S: Read + Write>(
    mut reader: BufReader<S>,
    peer: Option<Vec<u8>>,
    handler: &Handler,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let mut request = match read_request(&mut reader, stop) {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        request.peer_certificate = peer.clone();
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = handler(&request);
        if !reply.delay.is_zero() {
            thread::sleep(reply.delay);
        }
        let writer = reader.get_mut();
        let written = match reply.delivery {
            Delivery::Reset => return,
            Delivery::Truncated => {
                let _ = write_reply(writer, &reply, reply.body.len() / 2);
                return;
            }
            Delivery::Complete => write_reply(writer, &reply, reply.body.len()),
        };
        if written.is_err() || close {
            return;
        }
    }
}

/// Reads one request; `None` when the peer closed the connection or the
/// server stopped.
fn read_request<S: Read>(
    reader: &mut BufReader<S>,
    stop: &AtomicBool,
) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match reader.read_until(b'\n', &mut head) {
            Ok(0) => return Ok(None),
            Ok(_) if head.ends_with(b"\r\n\r\n") || head == b"\r\n" => break,
            Ok(_) if head.len() > MAX_REQUEST => {
                return Err(io::Error::other("request head too large"));
            }
            Ok(_) => {}
            Err(e) if is_idle_check(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return Err(io::Error::other("request body too large"));
    }
    let mut body = vec![0; length];
    read_exact_patiently(reader, &mut body, stop)?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
        peer_certificate: None,
    }))
}

/// Whether a read error is only the idle-check timeout.
fn is_idle_check(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `read_exact` that tolerates the idle-check timeouts.
fn read_exact_patiently(
    reader: &mut impl Read,
    mut buf: &mut [u8],
    stop: &AtomicBool,
) -> io::Result<()> {
    while !buf.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("server stopped"));
        }
        match reader.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if is_idle_check(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes the head (with the whole body's length) and `sent` bytes of the
/// body.
fn write_reply(writer: &mut impl Write, reply: &Reply, sent: usize) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
    writer.write_all(head.as_bytes())?;
    writer.write_all(&reply.body[..sent])?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
