//! The loopback IoT credential provider as a process of its own, for the
//! Python package's tests: `loopback_iot DIR LIFETIME_SECONDS`.
//!
//! Writes `ca.pem` (the provider's CA), `device.pem` and `device.key` (a
//! device identity) into DIR and, when `SOFTHSM2_CONF` is set, makes a
//! SoftHSM2 token `python-token` (user PIN `python-pin-1357`) holding the
//! key `device-key`, certified in `hsm-device.pem`. Starts mosquitto,
//! which takes clients with the CA's certificates. Prints one JSON line
//! with the provider's endpoint and the broker's TLS port, then answers each `issued` line on standard input
//! with the JSON list of the access keys issued so far, and stops at the
//! end of its input.

use std::io::BufRead;
use std::time::Duration;

use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::mosquitto::Mosquitto;
use refresh_session_tests::pki::Authority;
use refresh_session_tests::softhsm::{KeyKind, Token};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: loopback_iot DIR SECONDS"));
    let lifetime: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: loopback_iot DIR SECONDS");
    let ca = Authority::new("python test CA");
    let provider = LoopbackIot::start(
        ca.server_config(&ca.server(false)),
        IotOptions {
            role_alias: "python-role".to_owned(),
            lifetime: Duration::from_secs(lifetime),
        },
    );
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("written");
    write("ca.pem", &ca.certificate);
    let device = ca.device("python-thing");
    write("device.pem", &device.certificate);
    write("device.key", &device.key);
    if std::env::var_os("SOFTHSM2_CONF").is_some() {
        let token = Token::create("python-token", "python-pin-1357");
        let public = token.generate("device-key", KeyKind::P256);
        write("hsm-device.pem", &ca.certify("python-thing", &public));
    }
    let broker = Mosquitto::start(&ca);
    let started = serde_json::json!({
        "endpoint": provider.endpoint(),
        "mqtt_port": broker.tls_port,
    });
    println!("{started}");
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok("issued") => {
                let keys: Vec<String> = provider
                    .issued()
                    .into_iter()
                    .map(|c| c.access_key_id)
                    .collect();
                println!("{}", serde_json::json!(keys));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}
