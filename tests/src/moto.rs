//! moto's STS (and IAM) server, started per test on 127.0.0.1 with SigV4
//! verification on, and bootstrapped with a user, its access key and two
//! roles. The server is killed when the value drops.
//!
//! moto comes from the Python virtual environment that `scripts/test`
//! creates (`.venv` at the workspace root); `REFRESH_SESSION_PYTHON` names
//! another interpreter.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use refresh_session_core::Credentials;

/// How long moto may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// moto counts the bootstrap's calls; from the next one on it checks
/// signatures. Must match `CALLS` in `python/bootstrap_moto.py`.
const BOOTSTRAP_CALLS: u64 = 7;

/// A running, bootstrapped moto server.
pub struct Moto {
    child: Child,
    url: String,
    /// The IAM user's access key id.
    pub access_key_id: String,
    /// The IAM user's secret access key.
    pub secret_access_key: String,
    /// The IAM user's ARN.
    pub user_arn: String,
    /// A role the user may assume.
    pub role_arn: String,
    /// A role the user may assume only with [`Self::external_id`].
    pub external_role_arn: String,
    /// A role sessions of [`Self::role_arn`] may assume: a second hop.
    pub chained_role_arn: String,
    /// The external id that role demands.
    pub external_id: String,
}

/// The Python interpreter with moto and boto3.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("REFRESH_SESSION_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test environment at {}: run scripts/test (it creates .venv with moto[server]) or set REFRESH_SESSION_PYTHON",
        venv.display()
    );
    venv
}

/// Runs `tests/python/<script>` with [`python`], `args` and `input` on its
/// standard input, and returns its standard output. Panics with its standard error
/// if it fails: the test oracles and the bootstrap are test equipment.
pub fn run_python(script: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{script} does not start: {e}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .unwrap_or_else(|e| panic!("{script} does not read its input: {e}"));
    let output = child.wait_with_output().expect("the script ends");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

impl Moto {
    /// Starts and bootstraps a server. Panics with the reason if it cannot.
    pub fn start() -> Self {
        let mut child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", BOOTSTRAP_CALLS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto starts (python -m moto.server)");
        let url = match announced_url(&mut child) {
            Ok(url) => url,
            Err(problem) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("moto did not start: {problem}");
            }
        };
        let mut moto = Self {
            child,
            url,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            user_arn: String::new(),
            role_arn: String::new(),
            external_role_arn: String::new(),
            chained_role_arn: String::new(),
            external_id: String::new(),
        };
        moto.bootstrap();
        moto
    }

    /// The endpoint URL, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The IAM user's long-term credentials.
    pub fn user_credentials(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.as_str(),
            None,
            None,
        )
    }

    fn bootstrap(&mut self) {
        let stdout = run_python("bootstrap_moto.py", &[&self.url], b"");
        let json: serde_json::Value =
            serde_json::from_slice(&stdout).expect("the bootstrap prints JSON");
        let field = |name: &str| json[name].as_str().expect("bootstrap field").to_owned();
        assert_eq!(
            json["initial_no_auth_action_count"].as_u64(),
            Some(BOOTSTRAP_CALLS)
        );
        self.access_key_id = field("access_key_id");
        self.secret_access_key = field("secret_access_key");
        self.user_arn = field("user_arn");
        self.role_arn = field("role_arn");
        self.external_role_arn = field("external_role_arn");
        self.chained_role_arn = field("chained_role_arn");
        self.external_id = field("external_id");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads moto's log until it announces its address, then keeps draining
/// the log on a thread so moto never blocks on a full pipe. The address is
/// probed with a TCP connection, not an HTTP request, because moto counts
/// every HTTP request toward the unauthenticated bootstrap calls.
fn announced_url(child: &mut Child) -> Result<String, String> {
    let stderr = child.stderr.take().ok_or("moto has no stderr")?;
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("Running on http://") {
                let url = line[at + "Running on ".len()..].trim().to_owned();
                if let Some(sender) = sender.take() {
                    let _ = sender.send(url);
                }
            }
        }
    });
    let url = receiver
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| format!("no address announced within {START_TIMEOUT:?}"))?;
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(&address).is_err() {
        if Instant::now() >= deadline {
            return Err(format!("{address} does not accept connections"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("{url}/"))
}
