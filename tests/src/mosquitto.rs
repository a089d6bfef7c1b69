//! mosquitto (the Debian package), started per test on 127.0.0.1 with three
//! listeners: MQTT over TLS requiring a client certificate from the test CA
//! (the certificate's CN is the user name), MQTT over TLS WebSockets, and
//! plain WebSockets for [`crate::ws_recorder`] to relay to. Stopped when
//! dropped; [`Mosquitto::restart`] stops and starts it on the same ports.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::pki::Authority;

/// Where Debian installs the broker.
const BROKER: &str = "/usr/sbin/mosquitto";
/// How long the broker may take to open its ports.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running broker.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    child: Mutex<Child>,
    /// MQTT over TLS with client certificates.
    pub tls_port: u16,
    /// MQTT over TLS WebSockets (`wss://127.0.0.1:<port>/mqtt`).
    pub wss_port: u16,
    /// MQTT over plain WebSockets.
    pub ws_port: u16,
}

impl Mosquitto {
    /// Starts a broker whose certificate and trusted client CA come from
    /// `ca`.
    pub fn start(ca: &Authority) -> Self {
        assert!(
            std::path::Path::new(BROKER).exists(),
            "{BROKER} is missing: install mosquitto (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        let server = ca.server(false);
        let file = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("written");
            path
        };
        let cafile = file("ca.pem", &ca.certificate);
        let certfile = file("server.pem", &server.certificate);
        let keyfile = file("server.key", &server.key);
        let [tls_port, wss_port, ws_port] = free_ports();
        // Running as root, mosquitto drops to the `mosquitto` user unless
        // told to stay, and could then not read the files above.
        let user = if is_root() { "user root\n" } else { "" };
        let config = format!(
            "{user}per_listener_settings true\n\
             persistence false\n\
             log_dest stderr\n\
             \n\
             listener {tls_port} 127.0.0.1\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\nuse_identity_as_username true\n\
             allow_anonymous false\n\
             \n\
             listener {wss_port} 127.0.0.1\n\
             protocol websockets\n\
             certfile {cert}\nkeyfile {key}\n\
             allow_anonymous true\n\
             \n\
             listener {ws_port} 127.0.0.1\n\
             protocol websockets\n\
             allow_anonymous true\n",
            ca = cafile.display(),
            cert = certfile.display(),
            key = keyfile.display(),
        );
        file("mosquitto.conf", &config);
        let child = spawn(
            &dir.path().join("mosquitto.conf"),
            &[tls_port, wss_port, ws_port],
        );
        Self {
            dir,
            child: Mutex::new(child),
            tls_port,
            wss_port,
            ws_port,
        }
    }

    /// Stops the broker (every connection drops) and starts it again on
    /// the same ports.
    pub fn restart(&self) {
        let mut child = self.lock();
        stop(&mut child);
        *child = spawn(
            &self.dir.path().join("mosquitto.conf"),
            &[self.tls_port, self.wss_port, self.ws_port],
        );
    }

    fn lock(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        stop(&mut self.lock());
    }
}

fn spawn(config: &std::path::Path, ports: &[u16]) -> Child {
    let mut child = Command::new(BROKER)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let deadline = Instant::now() + START_TIMEOUT;
    while !ports
        .iter()
        .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "mosquitto exited at start: {status}; run `{BROKER} -c {}` to see why",
                config.display()
            );
        }
        if Instant::now() > deadline {
            stop(&mut child);
            panic!("mosquitto did not open {ports:?} within {START_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Ports nothing listens on now (the OS picks them, distinct; the broker
/// binds them a moment later).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] =
        std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"));
    listeners.map(|listener| listener.local_addr().expect("bound").port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
