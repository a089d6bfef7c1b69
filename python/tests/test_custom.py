"""A custom credentials method: called with its arguments, its timestamps
aware or refused, its exceptions typed errors for every waiting caller,
and a wait for it interruptible with Ctrl-C."""

import _thread
import datetime
import threading
import time

import pytest
from conftest import bounded

from refresh_session import ConfigurationError, CredentialError, RefreshableSession


def expiring_in(seconds, key="ASIACUSTOM"):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return {"access_key": key, "secret_key": "secret", "token": "token", "expiry_time": expiry}


def test_the_method_gets_its_arguments_and_aware_times_in_both_forms():
    calls = []

    def method(lifetime, as_text):
        calls.append(lifetime)
        answer = expiring_in(lifetime)
        if as_text:
            answer["expiry_time"] = answer["expiry_time"].isoformat()
        return answer

    for as_text in (False, True):
        session = RefreshableSession(
            method="custom",
            custom_credentials_method=method,
            custom_credentials_method_args={"lifetime": 3600, "as_text": as_text},
            region_name="us-east-1",
        )
        frozen = bounded(session.get_credentials().get_frozen_credentials)
        assert (frozen.access_key, frozen.secret_key, frozen.token) == (
            "ASIACUSTOM",
            "secret",
            "token",
        )
        assert session.refreshable_credentials()["expiry_time"] > datetime.datetime.now(
            datetime.timezone.utc
        ).isoformat()
    assert calls == [3600, 3600]


def test_a_naive_timestamp_is_refused_with_what_to_do():
    def naive():
        answer = expiring_in(3600)
        answer["expiry_time"] = answer["expiry_time"].replace(tzinfo=None)
        return answer

    session = RefreshableSession(method="custom", custom_credentials_method=naive)
    with pytest.raises(CredentialError) as raised:
        bounded(session.get_credentials().get_frozen_credentials)
    assert isinstance(raised.value.__cause__, ConfigurationError)
    assert "naive" in str(raised.value)


def test_an_exception_in_the_method_reaches_every_waiting_caller():
    started = threading.Event()

    def failing():
        started.set()
        time.sleep(0.3)
        raise ValueError("the vault is sealed")

    session = RefreshableSession(method="custom", custom_credentials_method=failing)
    errors = []

    def call():
        try:
            session.get_credentials().get_frozen_credentials()
        except CredentialError as error:
            errors.append(error)

    callers = [threading.Thread(target=call) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
        assert not caller.is_alive(), "a caller was left waiting"
    assert len(errors) == 8
    # A caller after the failure is told to wait for the next attempt, with
    # the same cause.
    with pytest.raises(CredentialError) as raised:
        bounded(session.get_credentials().get_frozen_credentials)
    errors.append(raised.value)
    assert "next attempt" in str(raised.value)
    for error in errors:
        assert "the vault is sealed" in str(error)
        assert isinstance(error.__cause__, ValueError)


def test_ctrl_c_interrupts_a_wait():
    release = threading.Event()

    def slow():
        release.wait(20)
        return expiring_in(3600)

    session = RefreshableSession(method="custom", custom_credentials_method=slow)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            session.get_credentials().get_frozen_credentials()
    finally:
        timer.cancel()
        release.set()
    assert time.monotonic() - started < 5, "the wait ended at the interrupt"
    # The refresh went on, and answers the next caller.
    assert bounded(session.refreshable_credentials)["access_key"] == "ASIACUSTOM"
