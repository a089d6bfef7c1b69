//! The command line with a device key in a SoftHSM2 token: the PIN comes
//! from the environment or a private file, never from the command line,
//! and is never printed, not even when it is wrong.
//!
//! This binary has its own `main` (SoftHSM needs `SOFTHSM2_CONF` in the
//! environment from the process's start, see `softhsm::reexec`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use refresh_session_tests::bounded::output_within;
use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::pki::Authority;
use refresh_session_tests::softhsm::{self, KeyKind, Token};

const BINARY: &str = env!("CARGO_BIN_EXE_refresh-session");
const PIN: &str = "cli-pin-2468";
const WRONG_PIN: &str = "wrong-pin-9753";

fn main() -> ExitCode {
    if let Some(code) = softhsm::reexec() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let ca = Authority::new("cli pkcs11 CA");
    let provider = LoopbackIot::start(
        ca.server_config(&ca.server(false)),
        IotOptions {
            role_alias: "device-role".to_owned(),
            lifetime: Duration::from_secs(3600),
        },
    );
    let token = Token::create("cli-token", PIN);
    let public = token.generate("tls-key", KeyKind::P256);
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).expect("written");
        path.display().to_string()
    };
    let certificate = write("cert.pem", &ca.certify("cli-thing", &public));
    let trust = write("ca.pem", &ca.certificate);
    let uri = format!(
        "pkcs11:token=cli-token;object=tls-key?module-path={}",
        softhsm::MODULE
    );
    let endpoint = provider.endpoint();
    let run = |uri: &str, pin: Option<&str>, extra: &[&str]| -> Output {
        let mut command = Command::new(BINARY);
        command
            .args([
                "credential-process",
                "--no-cache",
                "--iot-endpoint",
                &endpoint,
            ])
            .args(["--role-alias", "device-role", "--thing-name", "cli-thing"])
            .args([
                "--certificate",
                &certificate,
                "--ca",
                &trust,
                "--pkcs11",
                uri,
            ])
            .args(extra)
            .env_remove("REFRESH_SESSION_PKCS11_PIN");
        if let Some(pin) = pin {
            command.env("REFRESH_SESSION_PKCS11_PIN", pin);
        }
        output_within(command, Duration::from_secs(60))
    };
    let stderr = |output: &Output| String::from_utf8_lossy(&output.stderr).into_owned();
    let check = |ok: bool, what: &str, output: &Output| {
        assert!(ok, "{what}: {:?} {}", output.status, stderr(output));
        for secret in [PIN, WRONG_PIN] {
            assert!(!stderr(output).contains(secret), "{what}: the PIN printed");
        }
    };

    let output = run(&uri, Some(PIN), &[]);
    check(output.status.success(), "PIN from the environment", &output);
    assert_eq!(provider.issued().len(), 1, "credentials issued");

    let pin_file = write("pin", &format!("{PIN}\n"));
    fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o600)).expect("private");
    let output = run(&uri, None, &["--pin-file", &pin_file]);
    check(output.status.success(), "PIN from a file", &output);
    assert_eq!(provider.issued().len(), 2);

    fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o644)).expect("opened up");
    let output = run(&uri, None, &["--pin-file", &pin_file]);
    check(
        output.status.code() == Some(2),
        "a PIN file others can read",
        &output,
    );
    assert!(stderr(&output).contains("chmod 600"), "{}", stderr(&output));

    let with_pin = format!("{uri}&pin-value={PIN}");
    let output = run(&with_pin, None, &[]);
    check(
        output.status.code() == Some(2),
        "pin-value on the command line",
        &output,
    );
    assert!(
        stderr(&output).contains("--pin-file"),
        "{}",
        stderr(&output)
    );

    let output = run(&uri, Some(WRONG_PIN), &[]);
    check(output.status.code() == Some(2), "a wrong PIN", &output);
    assert!(
        stderr(&output).contains("refused the PIN"),
        "{}",
        stderr(&output)
    );

    let output = run(&uri, None, &[]);
    check(output.status.code() == Some(2), "no PIN", &output);
    assert_eq!(provider.issued().len(), 2, "no credentials without the PIN");
    println!("pkcs11: the PIN comes from the environment or a private file only: ok");
    ExitCode::SUCCESS
}
