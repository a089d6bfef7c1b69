//! The `refresh-session` binary end to end: its `credential_process` JSON
//! read by botocore against moto, `exec` serving a boto3 program across
//! credential expiries, IoT credentials from the loopback provider, usage
//! errors and exit codes, and no secret on standard error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use refresh_session_tests::bounded::output_within;
use refresh_session_tests::chain_oracle::botocore_resolve;
use refresh_session_tests::iot_server::{IotOptions, LoopbackIot};
use refresh_session_tests::moto::{Moto, python};
use refresh_session_tests::pki::Authority;
use refresh_session_tests::sso_server::LoopbackSso;
use refresh_session_tests::sts_server::{LoopbackSts, StsOptions};
use tempfile::TempDir;

const BINARY: &str = env!("CARGO_BIN_EXE_refresh-session");
const SERIAL: &str = "arn:aws:iam::123456789012:mfa/tester";
const MFA_CODE: &str = "246810";
/// No run of the binary takes longer; a hung one is killed and fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A temp home: files, and the AWS environment every run gets (nothing
/// inherited from the machine's).
struct Home {
    dir: TempDir,
    env: BTreeMap<String, String>,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut env = BTreeMap::new();
        let home = dir.path().display().to_string();
        env.insert("HOME".into(), home.clone());
        env.insert("AWS_CONFIG_FILE".into(), format!("{home}/config"));
        env.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            format!("{home}/credentials"),
        );
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        Self { dir, env }
    }

    /// A home whose environment holds these keys, the default chain's
    /// first source.
    fn with_keys(access_key_id: &str, secret_access_key: &str) -> Self {
        let mut home = Self::new();
        home.env
            .insert("AWS_ACCESS_KEY_ID".into(), access_key_id.to_owned());
        home.env
            .insert("AWS_SECRET_ACCESS_KEY".into(), secret_access_key.to_owned());
        home
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).expect("written");
        path
    }

    /// An MFA command that logs each time it is asked, with the PKCS#11
    /// PIN variable as it sees it (it must see none), and answers after
    /// `delay_seconds`.
    fn mfa_command(&self, delay_seconds: u32) -> String {
        let log = self.path("mfa.log");
        let script = self.write(
            "mfa.sh",
            &format!(
                "#!/bin/sh\necho \"asked [$REFRESH_SESSION_PKCS11_PIN]\" >> '{}'\n\
                 sleep {delay_seconds}\necho {MFA_CODE}\n",
                log.display()
            ),
        );
        format!("sh {}", script.display())
    }

    /// `credential-process` for moto's role, with `mfa` as the MFA command,
    /// caching in this home.
    fn credential_process_args(&self, moto: &Moto, mfa: &str) -> Vec<String> {
        let cache = self.path("cache").display().to_string();
        [
            "credential-process",
            "--role-arn",
            &moto.role_arn,
            "--serial-number",
            SERIAL,
            "--mfa-command",
            mfa,
            "--region",
            "us-east-1",
            "--endpoint-url",
            moto.url(),
            "--cache-dir",
            &cache,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn mfa_asked(&self) -> usize {
        fs::read_to_string(self.path("mfa.log"))
            .map(|log| log.lines().count())
            .unwrap_or(0)
    }

    /// The binary with `args`, this home's environment and no other AWS
    /// variable.
    fn run(&self, args: &[&str]) -> Output {
        bounded(self.command(args))
    }

    /// The command [`Home::run`] runs.
    fn command(&self, args: &[&str]) -> Command {
        self.wrapped(&[], args)
    }

    /// The binary with `args` as `wrapper` runs it (`prlimit ...`).
    fn wrapped(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(BINARY);
                command
            }
            None => Command::new(BINARY),
        };
        command.args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("AWS_") || name.starts_with("REFRESH_SESSION") {
                command.env_remove(name);
            }
        }
        command.envs(&self.env);
        command
    }

    /// Waits (bounded) for the file `name` to exist.
    fn wait_for_file(&self, name: &str) {
        let found = (0..500).any(|_| {
            let found = self.path(name).exists();
            if !found {
                thread::sleep(Duration::from_millis(20));
            }
            found
        });
        assert!(found, "{name} never came");
    }

    /// Waits (bounded) for the file `name` to hold `line`.
    fn wait_for_line(&self, name: &str, line: &str) {
        let found = (0..500).any(|_| {
            let text = fs::read_to_string(self.path(name)).unwrap_or_default();
            let found = text.lines().any(|l| l == line);
            if !found {
                thread::sleep(Duration::from_millis(20));
            }
            found
        });
        assert!(found, "{name} never got {line:?}");
    }
}

/// Runs `command` to its end, within [`RUN_LIMIT`].
fn bounded(command: Command) -> Output {
    output_within(command, RUN_LIMIT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The single file in the cache directory.
fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("the cache exists")
        .map(|entry| entry.expect("listed").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().expect("one")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

#[test]
fn credential_process_json_is_read_by_botocore_and_cached_until_advisory() {
    let moto = Moto::start();
    let home = Home::new();
    let cache = home.path("cache");
    let line = format!(
        "{BINARY} credential-process --profile base --role-arn {role} --role-session-name cli \
         --duration-seconds 900 --serial-number {SERIAL} --mfa-command '{mfa}' \
         --region us-east-1 --endpoint-url {url} --cache-dir {cache}",
        role = moto.role_arn,
        mfa = home.mfa_command(0),
        url = moto.url(),
        cache = cache.display(),
    );
    home.write(
        "config",
        &format!("[profile app]\ncredential_process = {line}\n"),
    );
    home.write(
        "credentials",
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.access_key_id, moto.secret_access_key
        ),
    );
    let mut env = home.env.clone();
    env.insert("AWS_ENDPOINT_URL_STS".into(), moto.url().to_owned());
    let resolve = || botocore_resolve(&env, Some("app"), true).expect("botocore resolves");

    let first = resolve();
    assert_eq!(
        first.arn.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/app/cli"),
        "botocore called STS as the role our JSON holds"
    );
    assert_eq!(home.mfa_asked(), 1);
    let file = cache_file(&cache);
    #[cfg(unix)]
    {
        assert_eq!(mode(&cache), 0o700);
        assert_eq!(mode(&file), 0o600);
    }

    // moto issues a new key on every AssumeRole: the same key is no call.
    let second = resolve();
    assert_eq!(second.access_key, first.access_key, "served from the cache");
    assert_eq!(home.mfa_asked(), 1, "no MFA code asked for again");

    // Fetched 1000 s ago, the 15-minute credentials are past their
    // advisory window: the next run assumes the role again.
    fs::File::options()
        .write(true)
        .open(&file)
        .expect("opened")
        .set_modified(SystemTime::now() - Duration::from_secs(1000))
        .expect("aged");
    let third = resolve();
    assert_ne!(third.access_key, first.access_key, "fetched again");
    assert_eq!(home.mfa_asked(), 2);
}

/// The access key of `credential_process` JSON.
fn access_key(output: &Output) -> String {
    assert_success(output);
    json(&stdout(output))["AccessKeyId"]
        .as_str()
        .expect("a key")
        .to_owned()
}

#[test]
fn eight_runs_at_once_with_an_empty_cache_make_one_call_and_ask_one_code() {
    let moto = Moto::start();
    let home = Home::with_keys(&moto.access_key_id, &moto.secret_access_key);
    // A slow MFA command, so that the others start while the first fetches.
    let args = home.credential_process_args(&moto, &home.mfa_command(1));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let mut command = home.command(&args);
            // Set, but the MFA command must not see it.
            command.env("REFRESH_SESSION_PKCS11_PIN", "2468");
            thread::spawn(move || bounded(command))
        })
        .collect();
    let keys: Vec<String> = runs
        .into_iter()
        .map(|run| access_key(&run.join().expect("ran")))
        .collect();
    // moto issues a new key on every AssumeRole: one key is one call.
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert_eq!(home.mfa_asked(), 1, "one MFA code for eight runs");
    let log = fs::read_to_string(home.path("mfa.log")).expect("the log");
    assert_eq!(log.trim(), "asked []", "the PIN stays with refresh-session");
}

#[test]
fn the_cache_key_is_the_session_profiles_and_files_included() {
    let moto = Moto::start();
    let mut home = Home::new();
    let config = |dev_role: &str| {
        format!(
            "[profile base]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\
             [profile dev]\nrole_arn = {dev_role}\nsource_profile = base\n\
             [profile prod]\nrole_arn = arn:aws:iam::123456789012:role/prod\nsource_profile = base\n",
            key = moto.access_key_id,
            secret = moto.secret_access_key,
        )
    };
    home.write("config", &config("arn:aws:iam::123456789012:role/dev"));
    home.env
        .insert("AWS_ENDPOINT_URL_STS".into(), moto.url().to_owned());
    home.env.insert("AWS_REGION".into(), "us-east-1".into());
    let cache = home.path("cache").display().to_string();
    let run = |home: &Home, profile: &str| {
        let mut command = home.command(&["credential-process", "--cache-dir", &cache]);
        command.env("AWS_DEFAULT_PROFILE", profile);
        access_key(&bounded(command))
    };
    let dev = run(&home, "dev");
    assert_eq!(run(&home, "dev"), dev, "cached");
    let prod = run(&home, "prod");
    assert_ne!(prod, dev, "AWS_DEFAULT_PROFILE=prod is another session");
    assert_eq!(run(&home, "prod"), prod, "cached in its own entry");
    assert_eq!(run(&home, "dev"), dev, "dev's entry is still there");

    home.write("config", &config("arn:aws:iam::123456789012:role/dev2"));
    let dev2 = run(&home, "dev");
    assert_ne!(dev2, dev, "a changed role_arn is another session");

    let other = home.write(
        "other-config",
        &config("arn:aws:iam::123456789012:role/dev"),
    );
    home.env
        .insert("AWS_CONFIG_FILE".into(), other.display().to_string());
    let elsewhere = run(&home, "dev");
    assert_ne!(elsewhere, dev, "another AWS_CONFIG_FILE is another session");
    assert_ne!(elsewhere, dev2);
}

#[test]
fn credential_process_prints_no_secret_on_stderr_and_fails_with_1() {
    let moto = Moto::start();
    let mut home = Home::with_keys(&moto.access_key_id, &moto.secret_access_key);
    let args = home.credential_process_args(&moto, &home.mfa_command(0));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for run in ["fetched", "cached"] {
        let output = home.run(&args);
        assert_success(&output);
        let printed = json(&stdout(&output));
        assert_eq!(printed["Version"], 1, "{run}");
        let secret = printed["SecretAccessKey"].as_str().expect("a secret");
        let token = printed["SessionToken"].as_str().expect("a token");
        let errors = stderr(&output);
        for hidden in [secret, token, &moto.secret_access_key, MFA_CODE] {
            assert!(
                !errors.contains(hidden),
                "{run}: a secret on stderr: {errors}"
            );
        }
    }

    home.env.insert(
        "AWS_SECRET_ACCESS_KEY".into(),
        "wrong-secret-wrong-secret".into(),
    );
    let output = home.run(&[&args[..], &["--no-cache"]].concat());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    let errors = stderr(&output);
    assert!(errors.contains("SignatureDoesNotMatch"), "{errors}");
    assert!(!errors.contains("wrong-secret-wrong-secret"), "{errors}");
}

#[test]
fn exec_serves_a_boto3_program_across_expiries_and_refuses_requests_without_the_token() {
    let moto = Moto::start();
    let home = Home::with_keys(&moto.access_key_id, &moto.secret_access_key);
    let child = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/exec_child.py");
    let python = python().display().to_string();
    // Six-second credentials (moto, on loopback, issues them), for twelve
    // seconds: several refreshes.
    let output = home.run(&[
        "exec",
        "--role-arn",
        &moto.role_arn,
        "--role-session-name",
        "exec",
        "--duration-seconds",
        "6",
        "--region",
        "us-east-1",
        "--endpoint-url",
        moto.url(),
        "--",
        &python,
        child,
        moto.url(),
        "12",
    ]);
    assert_success(&output);
    let printed = stdout(&output);
    let summary = json(printed.lines().last().expect("a summary"));
    let keys = summary["keys"].as_array().expect("keys");
    assert!(
        keys.len() >= 3,
        "at least two refreshes seen by the child: {printed}"
    );
    assert_eq!(
        summary["arn"],
        "arn:aws:sts::123456789012:assumed-role/app/exec"
    );
    assert!(summary["calls"].as_u64().expect("a count") > 0);
    let endpoint = summary["endpoint"].as_str().expect("a URL");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(summary["without_token"], 401);
    assert_eq!(summary["wrong_token"], 403);
    assert!(!stderr(&output).contains(&moto.secret_access_key));
}

#[test]
fn exec_exits_with_its_commands_code() {
    let home = Home::with_keys("AKIDEXAMPLEEXEC00001", "exec-secret");
    let output = home.run(&["exec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7));
    let output = home.run(&["exec", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(output.status.code(), Some(128 + 15));
    let output = home.run(&["exec", "--", "/nonexistent/program"]);
    assert_eq!(output.status.code(), Some(127));
    assert!(stderr(&output).contains("/nonexistent/program"));

    // The child sees the endpoint, not this shell's keys (nor the Java
    // SDK's names for them), nor the PKCS#11 PIN.
    let mut home = home;
    for (name, value) in [
        ("AWS_ACCESS_KEY", "AKIDJAVA"),
        ("AWS_SECRET_KEY", "java-secret"),
        ("REFRESH_SESSION_PKCS11_PIN", "1234"),
    ] {
        home.env.insert(name.into(), value.into());
    }
    let output = home.run(&[
        "exec",
        "--",
        "sh",
        "-c",
        "echo ${AWS_ACCESS_KEY_ID:-none} ${AWS_ACCESS_KEY:-none} ${AWS_SECRET_KEY:-none} \
         ${REFRESH_SESSION_PKCS11_PIN:-none} ${AWS_CONTAINER_CREDENTIALS_FULL_URI%%:*}",
    ]);
    assert_success(&output);
    assert_eq!(stdout(&output).trim(), "none none none none http");
}

/// A shell script for `exec` that logs each signal it gets and exits 7 on
/// SIGTERM, after writing its pid.
const TRAPS: &str = r#"
for s in INT HUP QUIT USR1 USR2 WINCH; do trap "echo $s >> signals.log" $s; done
trap 'echo TERM >> signals.log; exit 7' TERM
echo $$ > child.pid
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"#;

/// Sends `signal` to `pid` with kill(1).
fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')))
        .unwrap_or(true)
}

/// An `exec` of [`TRAPS`] in `home`, its command's pid once it runs; the
/// guard kills both at the end of the test, whatever happened.
struct Trapped {
    exec: std::process::Child,
    child: u32,
}

impl Trapped {
    fn start(home: &Home) -> Self {
        let script = home.write("traps.sh", TRAPS);
        let script = script.display().to_string();
        let exec = home
            .command(&["exec", "--", "sh", &script])
            .current_dir(home.dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("exec starts");
        let pid_file = home.path("child.pid");
        let started = (0..500).any(|_| {
            let written = fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'));
            if !written {
                thread::sleep(Duration::from_millis(20));
            }
            written
        });
        assert!(started, "the command never started");
        let child = fs::read_to_string(&pid_file).expect("the pid");
        let child = child.trim().parse().expect("a pid");
        Self { exec, child }
    }

    /// `exec`'s exit status, within ten seconds.
    fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..500 {
            if let Some(status) = self.exec.try_wait().expect("waited") {
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("exec did not exit");
    }
}

impl Drop for Trapped {
    fn drop(&mut self) {
        let _ = self.exec.kill();
        let _ = self.exec.wait();
        if !gone(self.child) {
            let _ = Command::new("kill")
                .args(["-9", &self.child.to_string()])
                .status();
        }
    }
}

#[test]
fn exec_forwards_each_signal_and_exits_with_the_commands_status() {
    let home = Home::with_keys("AKIDEXAMPLEEXEC00002", "exec-secret");
    let mut trapped = Trapped::start(&home);
    for signal in ["INT", "HUP", "QUIT", "USR1", "USR2", "WINCH"] {
        kill(signal, trapped.exec.id());
        home.wait_for_line("signals.log", signal);
    }
    kill("TERM", trapped.exec.id());
    home.wait_for_line("signals.log", "TERM");
    assert_eq!(trapped.wait().code(), Some(7), "the command's status");
}

#[test]
fn exec_killed_takes_its_command_with_it() {
    let home = Home::with_keys("AKIDEXAMPLEEXEC00003", "exec-secret");
    let mut trapped = Trapped::start(&home);
    kill("KILL", trapped.exec.id());
    trapped.wait();
    // Within a second: the parent-death signal, not a timeout of ours.
    let ended = (0..50).any(|_| {
        let ended = gone(trapped.child);
        if !ended {
            thread::sleep(Duration::from_millis(20));
        }
        ended
    });
    assert!(ended, "the command outlived exec by a second");
    home.wait_for_line("signals.log", "TERM");
}

#[test]
fn exec_warns_when_the_commands_default_profile_would_win() {
    let home = Home::with_keys("AKIDEXAMPLEEXEC00004", "exec-secret");
    let credentials = home.write(
        "credentials",
        "[default]\naws_access_key_id = AKIDSHADOW\naws_secret_access_key = s\n",
    );
    let output = home.run(&["exec", "--", "true"]);
    assert_success(&output);
    let warning = stderr(&output);
    assert!(
        warning.contains("warning") && warning.contains(&credentials.display().to_string()),
        "{warning}"
    );
    assert!(warning.contains("aws_access_key_id"), "{warning}");
    let output = home.run(&["exec", "--fail-if-shadowed", "--", "true"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));

    home.write("credentials", "[dev]\naws_access_key_id = AKIDSHADOW\n");
    let output = home.run(&["exec", "--fail-if-shadowed", "--", "true"]);
    assert_success(&output);
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

/// A command for `exec` that writes its endpoint's address and token to
/// `endpoint.txt`, then waits to be ended.
const SHOW_ENDPOINT: &str = r#"
echo "${AWS_CONTAINER_CREDENTIALS_FULL_URI#http://} $AWS_CONTAINER_AUTHORIZATION_TOKEN" > endpoint.tmp
mv endpoint.tmp endpoint.txt
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"#;

/// CPU time a process has used, in clock ticks (user and system, all
/// threads).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(") ")
        .next()
        .expect("fields")
        .split(' ')
        .collect();
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Descriptors a process has open.
fn descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count()
}

/// `GET /credentials` with `token`, and the time the answer took.
fn timed_get(address: &str, token: &str) -> (String, Duration) {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(address).expect("connected");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /credentials HTTP/1.1\r\nHost: {address}\r\nAuthorization: {token}\r\n\r\n"
    )
    .expect("sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    (answer, started.elapsed())
}

#[test]
fn the_endpoint_answers_at_once_and_idles_while_2000_connections_hang() {
    use std::io::Write;
    // Room for the held connections in this process.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let room = rustix::process::Rlimit {
        current: limit.maximum.map(|m| m.min(8192)),
        maximum: limit.maximum,
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, room).expect("raised");
    let home = Home::with_keys("AKIDEXAMPLEENDPOINT1", "endpoint-secret");
    let script = home
        .write("endpoint.sh", SHOW_ENDPOINT)
        .display()
        .to_string();
    // As is, and with only 64 descriptors, so that accept fails.
    for descriptor_limit in [None, Some(64u64)] {
        let _ = fs::remove_file(home.path("endpoint.txt"));
        let args = ["exec", "--", "sh", &script];
        let mut command = match descriptor_limit {
            None => home.command(&args),
            Some(limit) => home.wrapped(&["prlimit", &format!("--nofile={limit}:{limit}")], &args),
        };
        let mut exec = command
            .current_dir(home.dir.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("exec starts");
        home.wait_for_file("endpoint.txt");
        let line = fs::read_to_string(home.path("endpoint.txt")).expect("endpoint");
        let (address, token) = line.trim().split_once(' ').expect("address and token");
        let address = address.trim_end_matches("/credentials").to_owned();

        let mut held = Vec::with_capacity(2000);
        for i in 0..2000 {
            let mut stream = std::net::TcpStream::connect(&address).expect("connected");
            if i % 2 == 0 {
                // A slow client: half a request head, the rest never comes.
                let _ = stream.write_all(b"GET /credentials HTTP/1.1\r\nHost: x\r\n");
            }
            held.push(stream);
        }
        let before = cpu_ticks(exec.id());
        let (answer, took) = timed_get(&address, token);
        thread::sleep(Duration::from_secs(2));
        let used = cpu_ticks(exec.id()) - before;
        let open = descriptors(exec.id());
        let _ = exec.kill();
        let _ = exec.wait();
        drop(held);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("AKIDEXAMPLEENDPOINT1"), "{answer}");
        assert!(
            took < Duration::from_secs(1),
            "answered in {took:?} ({descriptor_limit:?})"
        );
        // Two seconds of wall time; at 100 ticks a second, 0.2 s of CPU.
        assert!(used <= 20, "{used} ticks of CPU ({descriptor_limit:?})");
        assert!(open <= 256 + 32, "{open} descriptors open");
    }
}

/// `credential-process` for `role` through an MFA session, on the
/// loopback STS.
fn mfa_session_args<'a>(home: &Home, sts: &'a LoopbackSts, role: &'a str) -> Vec<String> {
    let cache = home.path("cache").display().to_string();
    [
        "credential-process",
        "--role-arn",
        role,
        "--serial-number",
        SERIAL,
        "--mfa-session",
        "1h",
        "--mfa-command",
        &home.mfa_command(0),
        "--region",
        "us-east-1",
        "--endpoint-url",
        &sts.url(),
        "--cache-dir",
        &cache,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn an_mfa_session_serves_three_roles_over_many_runs_with_one_code() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(2),
        delay: Duration::ZERO,
    });
    sts.require_mfa();
    let home = Home::with_keys("AKIAALICE", "alice-secret");
    let roles =
        ["deploy", "read-only", "billing"].map(|r| format!("arn:aws:iam::123456789012:role/{r}"));
    let run = |role: &str| {
        let args = mfa_session_args(&home, &sts, role);
        let output = bounded(home.command(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        assert_success(&output);
        access_key(&output)
    };
    for _ in 0..3 {
        for role in &roles {
            assert!(run(role).starts_with("ASIALOOP"));
        }
        // Past the roles' credentials' expiry: every run fetches again.
        thread::sleep(Duration::from_millis(2100));
    }
    assert_eq!(sts.assume_role_calls(), 9, "three roles, three lifetimes");
    assert_eq!(home.mfa_asked(), 1, "one code for nine role sessions");
    assert_eq!(sts.mfa_sessions().len(), 1);
    // STS revokes the MFA session: the next run gets a new one, with one
    // code, and later runs use that.
    sts.revoke(&sts.mfa_sessions()[0].access_key_id);
    assert!(run(&roles[0]).starts_with("ASIALOOP"));
    assert_eq!(home.mfa_asked(), 2, "one new code");
    assert!(run(&roles[1]).starts_with("ASIALOOP"));
    assert_eq!(home.mfa_asked(), 2, "the new MFA session was cached");
    assert_eq!(sts.refused(), 1);
    // The user's access key is deleted: STS no longer knows the MFA session.
    // That run fails; the next asks for a new code instead of the cached.
    sts.invalidate(&sts.mfa_sessions()[1].access_key_id);
    thread::sleep(Duration::from_millis(2100));
    let args = mfa_session_args(&home, &sts, &roles[2]);
    let refused = bounded(home.command(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("InvalidClientTokenId"));
    assert_eq!(home.mfa_asked(), 2);
    assert!(run(&roles[2]).starts_with("ASIALOOP"));
    assert_eq!(
        home.mfa_asked(),
        3,
        "a new MFA session, not the refused one"
    );
}

#[test]
fn the_terminal_hears_of_an_mfa_command_that_may_wait_for_a_touch() {
    let sts = LoopbackSts::start(StsOptions {
        lifetime: Duration::from_secs(60),
        delay: Duration::ZERO,
    });
    let home = Home::with_keys("AKIAALICE", "alice-secret");
    let ykman = home.write(
        "ykman",
        &format!("#!/bin/sh\necho 'AWS:alice  {MFA_CODE}'\n"),
    );
    fs::set_permissions(&ykman, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("executable");
    let role = "arn:aws:iam::123456789012:role/app";
    let mut args = mfa_session_args(&home, &sts, role);
    let at = args.iter().position(|a| a == "--mfa-command").expect("set") + 1;
    args[at] = format!("{} oath accounts code --single aws", ykman.display());
    // `script` gives the run a terminal and prints what reaches it; the
    // run's own output goes to files, as an SDK captures it.
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
    let (out, err) = (home.path("out"), home.path("err"));
    let line = format!(
        "{} {} >{} 2>{}",
        BINARY,
        args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
        out.display(),
        err.display()
    );
    let mut command = Command::new("script");
    command.args(["-qec", &line, "/dev/null"]).envs(&home.env);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("AWS_")) {
        if !home.env.contains_key(&name) {
            command.env_remove(name);
        }
    }
    let terminal = bounded(command);
    assert_success(&terminal);
    let notice = format!(
        "refresh-session: running `{}` for an MFA code for {SERIAL}; if your security key blinks, touch it",
        ykman.display()
    );
    assert!(stdout(&terminal).contains(&notice), "{}", stdout(&terminal));
    let captured = fs::read_to_string(&err).expect("standard error");
    assert!(!captured.contains("security key"), "{captured}");
    let json = json(&fs::read_to_string(&out).expect("standard output"));
    assert!(
        json["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIALOOP"))
    );
}

#[test]
fn sso_login_writes_the_token_cache_that_botocore_and_our_sessions_read() {
    let portal = LoopbackSso::start("no-login-yet", Duration::from_secs(3600));
    let mut home = Home::new();
    for variable in ["AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL_SSO_OIDC"] {
        home.env.insert(variable.into(), portal.url());
    }
    home.write(
        "config",
        "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\nregion = eu-west-1\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n",
    );
    let opened = home.path("opened");
    let browser = home.write(
        "browser",
        &format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    );
    fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("executable");
    let mut command = home.command(&["sso", "login", "--sso-session", "corp", "--browser"]);
    command.env("BROWSER", &browser);
    let login = thread::spawn(move || bounded(command));
    // The page opens; the user waits a poll or two, then confirms.
    home.wait_for_file("opened");
    thread::sleep(Duration::from_millis(2500));
    portal.approve();
    let output = login.join().expect("ran");
    assert_success(&output);
    let code = portal.user_codes().pop().expect("a device login");
    assert!(stderr(&output).contains(&code), "{}", stderr(&output));
    assert_eq!(
        fs::read_to_string(&opened).expect("opened").trim(),
        format!("https://device.sso.example/?user_code={code}")
    );
    let (polls, slow_downs) = portal.device_polls();
    assert!(polls >= 2, "{polls} polls");
    assert_eq!(slow_downs, 0, "polled at the interval the server asked for");
    let cache = home.path(".aws/sso/cache");
    assert_eq!(mode(&cache), 0o700);
    let file = cache_file(&cache);
    assert_eq!(mode(&file), 0o600);
    let written = json(&fs::read_to_string(&file).expect("the token"));
    assert_eq!(written["startUrl"], "https://corp.awsapps.com/start");
    assert!(written["refreshToken"].is_string() && written["clientSecret"].is_string());
    // botocore finds the login and gets the role's credentials with it...
    let theirs = botocore_resolve(&home.env, Some("sso"), false).expect("botocore resolves");
    assert_eq!(theirs.access_key, "ASIASSOREADONLY9012");
    // ...and so does a session of ours.
    let ours = home.run(&["env", "--profile", "sso", "--json"]);
    assert_success(&ours);
    assert_eq!(json(&stdout(&ours))["AccessKeyId"], "ASIASSOREADONLY9012");
    assert_eq!(portal.renewals(), 0, "eight hours left: nobody renewed");
}

#[test]
fn bad_flags_are_usage_errors_with_exit_code_2() {
    let home = Home::new();
    // A directory others may enter: refused as a cache, and left as it is.
    let shared = home.path("shared");
    fs::create_dir(&shared).expect("made");
    fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("opened up");
    let shared = shared.display().to_string();
    let role = "arn:aws:iam::123456789012:role/app";
    let cases: [&[&str]; 11] = [
        &["credential-process", "--cache-dir", &shared],
        &[
            "credential-process",
            "--role-arn",
            role,
            "--mfa-session",
            "12h",
        ],
        &[
            "credential-process",
            "--role-arn",
            role,
            "--serial-number",
            SERIAL,
            "--mfa-session",
            "12y",
        ],
        &[
            "env",
            "--role-arn",
            role,
            "--serial-number",
            SERIAL,
            "--mfa-session",
            "37h",
            "--region",
            "us-east-1",
        ],
        &["credential-process", "--no-such-flag"],
        &["whoami", "--duration-seconds", "soon"],
        &["exec"],
        &["env", "--role-session-name", "orphan"],
        &["credential-process", "--iot-endpoint", "example.com"],
        &["credential-process", "--role-arn", "not-an-arn"],
        &["nonsense"],
    ];
    for args in cases {
        let output = home.run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!stderr(&output).is_empty(), "{args:?} says why");
    }
    assert_eq!(mode(home.path("shared").as_path()), 0o755, "not chmodded");
    let output = home.run(&["--help"]);
    assert_success(&output);
    assert!(stdout(&output).contains("credential-process"));
}

#[test]
fn env_and_whoami_print_for_shells_and_json() {
    let moto = Moto::start();
    let home = Home::with_keys(&moto.access_key_id, &moto.secret_access_key);
    let role = [
        "--role-arn",
        &moto.role_arn,
        "--role-session-name",
        "shell",
        "--region",
        "us-east-1",
        "--endpoint-url",
        moto.url(),
    ];
    let output = home.run(&[&["whoami"][..], &role].concat());
    assert_success(&output);
    assert_eq!(
        stdout(&output).trim(),
        "arn:aws:sts::123456789012:assumed-role/app/shell"
    );
    let output = home.run(&[&["whoami", "--json"][..], &role].concat());
    assert_success(&output);
    assert_eq!(json(&stdout(&output))["Account"], "123456789012");

    let output = home.run(&[&["env"][..], &role].concat());
    assert_success(&output);
    let exports = stdout(&output);
    // The lines work in a shell: the assumed role's key comes out.
    let shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{exports}\necho \"$AWS_ACCESS_KEY_ID $AWS_CREDENTIAL_EXPIRATION\""
        ))
        .output()
        .expect("sh runs");
    let echoed = String::from_utf8(shell.stdout).expect("UTF-8");
    let (key, expiration) = echoed.trim().split_once(' ').expect("two words");
    assert!(key.starts_with("ASIA"), "{echoed}");
    assert!(expiration.ends_with('Z'), "{echoed}");
    let output = home.run(&[&["env", "--json"][..], &role].concat());
    assert_success(&output);
    assert!(json(&stdout(&output))["SessionToken"].is_string());
}

#[test]
fn iot_credentials_from_a_device_certificate() {
    let ca = Authority::new("cli test CA");
    let provider = LoopbackIot::start(
        ca.server_config(&ca.server(false)),
        IotOptions {
            role_alias: "device-role".to_owned(),
            lifetime: Duration::from_secs(3600),
        },
    );
    let device = ca.device("cli-thing");
    let home = Home::new();
    let certificate = home.write("cert.pem", &device.certificate);
    let key = home.write("key.pem", &device.key);
    let trust = home.write("ca.pem", &ca.certificate);
    let output = home.run(&[
        "credential-process",
        "--no-cache",
        "--iot-endpoint",
        &provider.endpoint(),
        "--role-alias",
        "device-role",
        "--thing-name",
        "cli-thing",
        "--certificate",
        &certificate.display().to_string(),
        "--private-key",
        &key.display().to_string(),
        "--ca",
        &trust.display().to_string(),
    ]);
    assert_success(&output);
    let printed = json(&stdout(&output));
    let issued = provider.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(printed["AccessKeyId"], issued[0].access_key_id.as_str());
    assert_eq!(provider.calls()[0].thing_name.as_deref(), Some("cli-thing"));
}
