"""botocore's race test shape on our session: 20 threads x 4,000 reads of
the frozen credentials across several refreshes. No thread ever reads an
expired credential, and each credential is fetched once (one refresh per
expiry, whatever the number of readers)."""

import datetime
import threading
import time

from refresh_session import RefreshableSession

THREADS = 20
READS = 4_000
LIFETIME = 2.0


def test_no_expired_credential_and_one_refresh_per_expiry():
    issued = {}
    lock = threading.Lock()

    def method():
        with lock:
            key = f"ASIARACE{len(issued):08d}"
            expiry = time.time() + LIFETIME
            issued[key] = expiry
        at = datetime.datetime.fromtimestamp(expiry, datetime.timezone.utc)
        return {"access_key": key, "secret_key": "s", "token": "t", "expiry_time": at}

    session = RefreshableSession(
        method="custom",
        custom_credentials_method=method,
        advisory_timeout=1.0,
        mandatory_timeout=0.5,
    )
    credentials = session.get_credentials()
    stale = []
    errors = []

    def reader():
        try:
            for n in range(READS):
                frozen = credentials.get_frozen_credentials()
                read_at = time.time()
                if issued[frozen.access_key] <= read_at:
                    stale.append((frozen.access_key, read_at))
                # Spread over about five seconds: several lifetimes.
                if n % 10 == 0:
                    time.sleep(0.012)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=reader) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a reader hung"
    elapsed = time.monotonic() - started
    assert not errors, errors[:3]
    assert not stale, f"expired credentials read: {stale[:3]}"
    # A refresh starts a second before expiry: one per second of lifetime
    # at most, plus the first fetch.
    assert len(issued) >= 2, "the run crossed refreshes"
    assert len(issued) <= elapsed / (LIFETIME - 1.0) + 2, (len(issued), elapsed)
