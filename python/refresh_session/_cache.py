"""The client and resource cache of a session: boto3 clients are slow to
make (tens of milliseconds, mostly reading service models), and the
credentials under them refresh themselves, so one client per set of
arguments is enough."""

import threading
from collections import OrderedDict

from ._native import ConfigurationError

POLICIES = ("LRU", "LFU")


class ClientCache:
    """A bounded map from normalised client arguments to clients.

    ``LRU`` (the default) evicts the client used least recently, ``LFU``
    the one used least often (the least recent among equals). Safe to share
    between threads; a client is made outside the lock, so a slow build
    holds up no lookup of another client.
    """

    def __init__(self, max_size=10, eviction_policy="LRU"):
        self._lock = threading.Lock()
        self._entries = OrderedDict()
        self._uses = {}
        self._max_size = 10
        self._policy = "LRU"
        self.configure(max_size=max_size, eviction_policy=eviction_policy)

    @property
    def max_size(self):
        return self._max_size

    @property
    def eviction_policy(self):
        return self._policy

    def configure(self, max_size=None, eviction_policy=None):
        """Changes the bound or the policy; a smaller bound evicts at once."""
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
                raise ConfigurationError(f"max_size: {max_size!r} is not a positive integer")
        if eviction_policy is not None:
            eviction_policy = str(eviction_policy).upper()
            if eviction_policy not in POLICIES:
                raise ConfigurationError(
                    f"eviction_policy: {eviction_policy!r} is not one of {POLICIES}"
                )
        with self._lock:
            if max_size is not None:
                self._max_size = max_size
            if eviction_policy is not None:
                self._policy = eviction_policy
            self._evict()

    def get_or_create(self, key, create):
        """The client for ``key``, made with ``create()`` on a miss."""
        with self._lock:
            client = self._entries.get(key)
            if client is not None:
                self._used(key)
                return client
        client = create()
        with self._lock:
            # Another thread may have made one meanwhile: keep the first.
            kept = self._entries.setdefault(key, client)
            self._used(key)
            self._evict()
            return kept

    def _used(self, key):
        self._entries.move_to_end(key)
        self._uses[key] = self._uses.get(key, 0) + 1

    def _evict(self):
        while len(self._entries) > self._max_size:
            if self._policy == "LRU":
                victim = next(iter(self._entries))
            else:
                # Least used; among equals the least recent (first in order).
                victim = min(self._entries, key=self._uses.__getitem__)
            del self._entries[victim]
            del self._uses[victim]

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._uses.clear()

    def keys(self):
        with self._lock:
            return list(self._entries)

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def __repr__(self):
        return (
            f"ClientCache(max_size={self._max_size}, eviction_policy={self._policy!r}, "
            f"size={len(self._entries)})"
        )
