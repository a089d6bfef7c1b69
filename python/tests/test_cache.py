"""The client and resource cache: one client per normalised arguments,
LRU by default, LFU on request, bounded by max_size."""

import datetime

import pytest
from botocore.config import Config

from refresh_session import ClientCache, ConfigurationError, RefreshableSession


def session():
    def method():
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        return {"access_key": "ASIACACHE", "secret_key": "s", "token": "t", "expiry_time": expiry}

    return RefreshableSession(
        method="custom", custom_credentials_method=method, region_name="us-east-1"
    )


def test_clients_are_cached_by_their_normalised_arguments():
    s = session()
    s3 = s.client("s3")
    assert s.client(service_name="s3") is s3
    assert s.client("s3", region_name=None) is s3
    assert s.client("s3", region_name="eu-west-1") is not s3
    assert s.client("s3", config=Config(retries={"max_attempts": 2})) is s.client(
        "s3", config=Config(retries={"max_attempts": 2})
    )
    assert s.resource("s3") is s.resource("s3")
    assert s.resource("s3") is not s3
    assert len(s.cache) == 5


def test_lru_evicts_the_least_recent_and_lfu_the_least_used():
    cache = ClientCache(max_size=2)
    made = []

    def get(key):
        return cache.get_or_create(key, lambda: made.append(key) or object())

    get("a"), get("b"), get("a"), get("c")
    assert cache.keys() == ["a", "c"], "b was the least recent"
    cache = ClientCache(max_size=2, eviction_policy="LFU")
    get("a"), get("a"), get("b"), get("c")
    assert set(cache.keys()) == {"a", "c"}, "b was used least (once, before c)"
    cache.configure(max_size=1)
    assert cache.keys() == ["a"], "shrinking evicts at once"


def test_client_takes_the_cache_settings():
    s = session()
    s.client("s3", max_size=1, eviction_policy="lfu")
    assert (s.cache.max_size, s.cache.eviction_policy) == (1, "LFU")
    s.client("sts")
    assert len(s.cache) == 1
    with pytest.raises(ConfigurationError):
        s.client("s3", eviction_policy="random")
