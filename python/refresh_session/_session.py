"""``RefreshableSession``: a ``boto3.session.Session`` whose botocore
session holds credentials backed by the Rust session."""

import datetime
import inspect

import boto3.session
from botocore.credentials import Credentials, ReadOnlyCredentials

from . import _native
from ._cache import ClientCache
from ._options import file_or_pem, native_options

#: ``boto3.session.Session``'s own keyword arguments.
BOTO3_KEYWORDS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "botocore_session",
    "profile_name",
    "aws_account_id",
)


class RefreshableSession(boto3.session.Session):
    """A boto3 session whose credentials refresh themselves.

    ``method`` picks the source: ``"sts"`` (``assume_role_kwargs``, with
    ``sts_client_kwargs``, ``mfa_token_provider`` and its
    ``mfa_token_provider_args``, or ``mfa_command``), ``"custom"``
    (``custom_credentials_method`` and its
    ``custom_credentials_method_args``) or ``"iot"`` (``endpoint``,
    ``role_alias``, ``thing_name``, ``certificate``, ``private_key`` or
    ``pkcs11``, ``ca``, ``duration_seconds``). ``boto3.session.Session``'s
    keywords work as in boto3; keys given to it sign the STS calls (else the
    default chain finds them).

    ``defer_refresh=True`` (the default) fetches on first use; ``False``
    fetches here and refreshes in the background. Either way, callers wait
    only when the credential is in its last ``mandatory_timeout`` seconds
    (default 60) or gone; from ``advisory_timeout`` seconds before expiry
    (default by lifetime: 5, 15 or 60 minutes) one refresh runs in the
    background while the current credential is still handed out.
    """

    def __init__(
        self,
        method="sts",
        defer_refresh=True,
        advisory_timeout=None,
        mandatory_timeout=None,
        **kwargs,
    ):
        base = {name: kwargs.pop(name) for name in BOTO3_KEYWORDS if name in kwargs}
        options = native_options(
            method, defer_refresh, advisory_timeout, mandatory_timeout, kwargs, base
        )
        # The keys, if any, sign the STS calls only: the clients get the
        # refreshed credentials. (aws_account_id is passed on only when
        # given: boto3 before 1.35 does not take it.)
        passed = ("region_name", "profile_name", "botocore_session", "aws_account_id")
        super().__init__(**{name: base[name] for name in passed if name in base})
        # The region boto3 settled on (argument, environment, profile) is
        # the one STS is called in, unless sts_client_kwargs names another.
        if options["region"] is None:
            options["region"] = self.region_name
        self._native = _native.Session(options)
        self._session._credentials = SessionCredentials(self._native)
        self.cache = ClientCache()
        self._keys = {}

    def client(self, *args, eviction_policy=None, max_size=None, **kwargs):
        """boto3's ``client()``, cached by its arguments (``session.cache``)."""
        self.cache.configure(max_size=max_size, eviction_policy=eviction_policy)
        key = self._key("client", args, kwargs)
        make = super().client
        return self.cache.get_or_create(key, lambda: make(*args, **kwargs))

    def resource(self, *args, eviction_policy=None, max_size=None, **kwargs):
        """boto3's ``resource()``, cached by its arguments (``session.cache``)."""
        self.cache.configure(max_size=max_size, eviction_policy=eviction_policy)
        key = self._key("resource", args, kwargs)
        make = super().resource
        return self.cache.get_or_create(key, lambda: make(*args, **kwargs))

    def _key(self, kind, args, kwargs):
        """The cache key of a ``kind`` call: its normalised arguments,
        remembered per spelling of the call, since normalising costs
        microseconds."""
        spelled = (kind, args, tuple(kwargs.items()))
        try:
            key = self._keys.get(spelled)
        except TypeError:  # an unhashable argument: normalise every time
            return _normalised(kind, self, args, kwargs)
        if key is None:
            key = _normalised(kind, self, args, kwargs)
            if len(self._keys) >= MAX_SPELLINGS:
                self._keys.clear()
            self._keys[spelled] = key
        return key

    def refreshable_credentials(self):
        """The current credentials: ``access_key``, ``secret_key``,
        ``token`` and ``expiry_time`` (ISO 8601, UTC)."""
        access_key, secret_key, token, expiry = self._native.credentials()
        if expiry is not None:
            expiry = datetime.datetime.fromtimestamp(expiry, datetime.timezone.utc).isoformat()
        return {
            "access_key": access_key,
            "secret_key": secret_key,
            "token": token,
            "expiry_time": expiry,
        }

    @property
    def credentials(self):
        """The current credentials, as ``refreshable_credentials()``."""
        return self.refreshable_credentials()

    def whoami(self):
        """Who the credentials handed out belong to (the assumed role, for
        ``method="sts"``): STS ``GetCallerIdentity``'s ``UserId``,
        ``Account`` and ``Arn``."""
        return self._native.whoami()

    get_identity = whoami

    def mqtt(
        self,
        endpoint,
        *,
        port=None,
        client_id=None,
        keep_alive=None,
        clean_session=True,
        websocket=False,
        ca=None,
        timeout=10.0,
    ):
        """An MQTT connection to ``endpoint`` (the account's
        ``<prefix>-ats.iot.<region>.amazonaws.com``), once the broker has
        acknowledged it: mutual TLS with an IoT session's certificate and
        key (port 8883; the client id defaults to the thing name), or, with
        ``websocket=True``, a WebSocket signed with the session's current
        credentials on every (re)connect, for any session.

        The connection has ``publish(topic, payload, qos=1, retain=False)``,
        ``subscribe(topic, callback, qos=1)`` (``callback(topic, payload)``
        is called on the connection's thread for each message) and
        ``disconnect()``; it reconnects and subscribes again by itself.
        """
        ca_file, ca_pem = file_or_pem("ca", ca)
        return self._native.mqtt(
            {
                "endpoint": endpoint,
                "port": port,
                "client_id": client_id,
                "keep_alive": keep_alive,
                "clean_session": bool(clean_session),
                "websocket": bool(websocket),
                "ca_file": ca_file,
                "ca_pem": ca_pem,
                "timeout": float(timeout),
            }
        )


class SessionCredentials(Credentials):
    """botocore credentials that read the Rust session on every use, so a
    client made once signs with each new credential across refreshes."""

    method = "refresh-session"

    def __init__(self, native):
        # botocore's __init__ stores fixed keys; these are read live.
        self._native = native
        self._frozen = (None, None)

    @property
    def access_key(self):
        return self._native.credentials()[0]

    @property
    def secret_key(self):
        return self._native.credentials()[1]

    @property
    def token(self):
        return self._native.credentials()[2]

    def get_frozen_credentials(self):
        current = self._native.credentials()
        # One attribute, replaced whole, so threads never see half a pair.
        made_from, frozen = self._frozen
        if made_from is not current:
            frozen = ReadOnlyCredentials(current[0], current[1], current[2])
            self._frozen = (current, frozen)
        return frozen


#: Spellings of client() and resource() calls remembered at most.
MAX_SPELLINGS = 256

_SIGNATURES = {
    "client": inspect.signature(boto3.session.Session.client),
    "resource": inspect.signature(boto3.session.Session.resource),
}


def _normalised(kind, session, args, kwargs):
    """What the call is, then its arguments with their defaults, by name,
    hashable: ``client("s3")`` and ``client(service_name="s3",
    region_name=None)`` are one entry."""
    bound = _SIGNATURES[kind].bind(session, *args, **kwargs)
    bound.apply_defaults()
    return (kind,) + tuple(
        (name, _hashable(value)) for name, value in bound.arguments.items() if name != "self"
    )


def _hashable(value):
    # A botocore Config compares by what the user set in it.
    options = getattr(value, "_user_provided_options", None)
    if isinstance(options, dict):
        return ("Config", repr(sorted(options.items(), key=lambda item: item[0])))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
