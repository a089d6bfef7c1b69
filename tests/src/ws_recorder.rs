//! A recording WebSocket front for mosquitto: it terminates TLS on
//! 127.0.0.1 with a certificate from the test CA, records the target of
//! every WebSocket upgrade request (the presigned URL a client connects
//! with), and relays the connection to mosquitto's plain WebSocket
//! listener. [`WsRecorder::disconnect_all`] cuts every relayed connection,
//! so clients reconnect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The longest upgrade request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its upgrade request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The running front.
pub struct WsRecorder {
    runtime: Option<Runtime>,
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    cut: watch::Sender<u64>,
}

impl WsRecorder {
    /// Listens with `tls`, relaying to `127.0.0.1:<upstream_port>`.
    pub fn start(tls: Arc<ServerConfig>, upstream_port: u16) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        // Bound without block_on, which a caller inside a runtime may not
        // use.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener).expect("a tokio listener")
        };
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let (cut, _) = watch::channel(0);
        let front = Front {
            acceptor: TlsAcceptor::from(tls),
            upstream_port,
            targets: targets.clone(),
            cut: cut.clone(),
        };
        runtime.spawn(front.serve(listener));
        Self {
            runtime: Some(runtime),
            port,
            targets,
            cut,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target (path and query) of every upgrade request, in
    /// order.
    pub fn targets(&self) -> Vec<String> {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Drops every relayed connection.
    pub fn disconnect_all(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

impl Drop for WsRecorder {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Clone)]
struct Front {
    acceptor: TlsAcceptor,
    upstream_port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    cut: watch::Sender<u64>,
}

impl Front {
    async fn serve(self, listener: TcpListener) {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(self.clone().relay(client));
        }
    }

    /// Relays one connection until either side closes or it is cut. A
    /// failure ends the connection, which is what the client should see.
    async fn relay(self, client: TcpStream) {
        let mut cut = self.cut.subscribe();
        let Ok(mut client) = self.acceptor.accept(client).await else {
            return;
        };
        let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await
        else {
            return;
        };
        if let Some(target) = request_target(&head) {
            self.targets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(target);
        }
        let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", self.upstream_port)).await else {
            return;
        };
        if upstream.write_all(&head).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = cut.changed() => {}
        }
    }
}

/// Reads up to the end of the request head (`\r\n\r\n`); a WebSocket
/// client sends nothing more before the answer.
async fn read_head(client: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || client.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// `GET <target> HTTP/1.1` -> `<target>`.
fn request_target(head: &[u8]) -> Option<String> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.split(' ').nth(1).map(str::to_owned)
}
