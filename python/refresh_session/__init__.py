"""AWS temporary credentials that never go stale, for boto3.

``refresh_session.RefreshableSession`` takes boto3-refresh-session's
arguments (``method="sts" | "custom" | "iot"``, ``assume_role_kwargs``,
``custom_credentials_method``, ...) and is a ``boto3.session.Session`` whose
clients sign with credentials that a Rust engine keeps fresh: refreshed in
the background before they expire, one refresh for every caller, retried
with jitter, corrected for clock skew. Moving over is one import line::

    from refresh_session import RefreshableSession
"""

from ._native import (
    ConfigurationError,
    ConnectionError,
    CredentialError,
    RefreshSessionError,
    RequestError,
)
from ._cache import ClientCache
from ._session import RefreshableSession

__all__ = [
    "ClientCache",
    "ConfigurationError",
    "ConnectionError",
    "CredentialError",
    "RefreshSessionError",
    "RefreshableSession",
    "RequestError",
]
