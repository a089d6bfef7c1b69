"""Peers for the Python package's tests: moto's server (STS and S3) with
signature checking on, and the project's loopback IoT credential provider
(with a SoftHSM2 token). Every server binds 127.0.0.1 and is stopped when
its fixture ends; every wait is bounded."""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import bootstrap_moto  # noqa: E402

START_TIMEOUT = 30


def _read_line(stream, timeout, what):
    """A line from ``stream`` within ``timeout`` seconds."""
    got = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not got or not got[0]:
        raise RuntimeError(f"{what} did not answer within {timeout} s")
    return got[0]


@pytest.fixture(scope="session")
def moto():
    """A bootstrapped moto server: its URL, the IAM user's keys, a role."""
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(bootstrap_moto.CALLS))
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for _ in range(50):
            line = _read_line(process.stderr, START_TIMEOUT, "moto")
            match = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "moto did not say where it runs"
        # Keep moto's log drained so that it never blocks on a full pipe.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        peer = bootstrap_moto.bootstrap(url)
        peer["url"] = url
        yield peer
    finally:
        process.kill()
        process.wait(timeout=10)


def _loopback_iot_binary():
    given = os.environ.get("REFRESH_SESSION_LOOPBACK_IOT")
    path = pathlib.Path(given) if given else ROOT / "target" / "debug" / "examples" / "loopback_iot"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: cargo build -p refresh-session-tests --example loopback_iot"
        )
    return path


@pytest.fixture(scope="session")
def iot():
    """The loopback IoT provider (30-second credentials), a PEM device
    identity, a SoftHSM2 token and mosquitto, in a temporary directory."""
    with tempfile.TemporaryDirectory() as dir:
        dir = pathlib.Path(dir)
        tokens = dir / "tokens"
        tokens.mkdir()
        conf = dir / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        # This process loads SoftHSM (through the extension) only after the
        # token exists, and reads the variable then.
        os.environ["SOFTHSM2_CONF"] = str(conf)
        process = subprocess.Popen(
            [str(_loopback_iot_binary()), str(dir), "30"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            started = json.loads(_read_line(process.stdout, START_TIMEOUT, "loopback_iot"))

            def issued():
                process.stdin.write("issued\n")
                process.stdin.flush()
                return json.loads(_read_line(process.stdout, START_TIMEOUT, "loopback_iot"))

            yield {
                "endpoint": started["endpoint"],
                "mqtt_port": started["mqtt_port"],
                "dir": dir,
                "issued": issued,
                "module": "/usr/lib/softhsm/libsofthsm2.so",
            }
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def bounded(call, timeout=30):
    """``call()`` on a thread, its result or exception within ``timeout``
    seconds: a hung call fails the test instead of hanging it."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the call did not return within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
