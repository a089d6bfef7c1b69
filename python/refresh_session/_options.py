"""boto3-refresh-session's keyword arguments, checked for names and types
and turned into the options of the Rust session. Values (ARNs, durations,
regions, timestamps) are checked by the engine when the session is built;
both raise ``ConfigurationError`` saying what to fix."""

import datetime
import os

from ._native import ConfigurationError

METHODS = ("sts", "custom", "iot")

#: Each method's own keyword arguments.
METHOD_KEYWORDS = {
    "sts": (
        "assume_role_kwargs",
        "sts_client_kwargs",
        "mfa_token_provider",
        "mfa_token_provider_args",
        "mfa_command",
    ),
    "custom": ("custom_credentials_method", "custom_credentials_method_args"),
    "iot": (
        "endpoint",
        "role_alias",
        "thing_name",
        "certificate",
        "private_key",
        "pkcs11",
        "ca",
        "duration_seconds",
    ),
}

#: AssumeRole's fields, as boto3 names them, and the engine's names.
ASSUME_ROLE_FIELDS = {
    "RoleArn": "role_arn",
    "RoleSessionName": "role_session_name",
    "DurationSeconds": "duration_seconds",
    "ExternalId": "external_id",
    "SerialNumber": "serial_number",
    "TokenCode": "token_code",
    "Policy": "policy",
    "PolicyArns": "policy_arns",
    "Tags": "tags",
    "TransitiveTagKeys": "transitive_tag_keys",
    "SourceIdentity": "source_identity",
    "ProvidedContexts": "provided_contexts",
}

PKCS11_FIELDS = ("pkcs11_lib", "user_pin", "slot_id", "token_label", "private_key_label")


def native_options(method, defer_refresh, advisory_timeout, mandatory_timeout, kwargs, base):
    """The options of ``_native.Session`` for these arguments; ``base``
    holds the ``boto3.session.Session`` keywords, ``kwargs`` the rest."""
    if method not in METHODS:
        raise ConfigurationError(f"method: {method!r} is not one of {METHODS}")
    allowed = METHOD_KEYWORDS[method]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"method={method!r} takes no {', '.join(unknown)}; its arguments are "
            f"{', '.join(allowed)} and boto3.session.Session's"
        )
    options = {
        "method": method,
        "defer_refresh": bool(defer_refresh),
        "advisory_timeout": _seconds("advisory_timeout", advisory_timeout),
        "mandatory_timeout": _seconds("mandatory_timeout", mandatory_timeout),
        "region": base.get("region_name"),
        "endpoint_url": None,
        "profile": base.get("profile_name"),
        "source_keys": _source_keys(base),
        "assume_role": None,
        "mfa_provider": None,
        "mfa_command": None,
        "custom": None,
        "iot": None,
    }
    if method == "sts":
        _sts(kwargs, options)
    elif method == "custom":
        options["custom"] = _custom(kwargs)
    else:
        options["iot"] = _iot(kwargs)
    return options


def _seconds(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name}: {value!r} is not a number of seconds")
    return float(value)


def _source_keys(base):
    access_key = base.get("aws_access_key_id")
    secret_key = base.get("aws_secret_access_key")
    if (access_key is None) != (secret_key is None):
        raise ConfigurationError(
            "aws_access_key_id and aws_secret_access_key go together: pass both or neither"
        )
    if access_key is None:
        return None
    return (access_key, secret_key, base.get("aws_session_token"))


def _sts(kwargs, options):
    assume_role = kwargs.get("assume_role_kwargs")
    if not isinstance(assume_role, dict):
        raise ConfigurationError(
            "assume_role_kwargs: method='sts' needs a dict with at least RoleArn"
        )
    options["assume_role"] = _assume_role(assume_role)
    client = kwargs.get("sts_client_kwargs") or {}
    if not isinstance(client, dict):
        raise ConfigurationError("sts_client_kwargs: expected a dict")
    options["endpoint_url"] = client.get("endpoint_url")
    if client.get("region_name"):
        options["region"] = client["region_name"]
    provider = kwargs.get("mfa_token_provider")
    command = kwargs.get("mfa_command")
    if provider is not None and command is not None:
        raise ConfigurationError("pass mfa_token_provider or mfa_command, not both")
    if provider is not None:
        if not callable(provider):
            raise ConfigurationError("mfa_token_provider: expected a callable")
        args = kwargs.get("mfa_token_provider_args") or {}
        if not isinstance(args, dict):
            raise ConfigurationError("mfa_token_provider_args: expected a dict of keyword arguments")

        def mfa_code(_serial):
            return str(provider(**args)).strip()

        options["mfa_provider"] = mfa_code
    elif kwargs.get("mfa_token_provider_args") is not None:
        raise ConfigurationError("mfa_token_provider_args needs mfa_token_provider")
    if command is not None:
        options["mfa_command"] = _argv("mfa_command", command)


def _assume_role(given):
    unknown = sorted(set(given) - set(ASSUME_ROLE_FIELDS))
    if unknown:
        raise ConfigurationError(
            f"assume_role_kwargs: unknown {', '.join(unknown)}; AssumeRole takes "
            f"{', '.join(ASSUME_ROLE_FIELDS)}"
        )
    if not given.get("RoleArn"):
        raise ConfigurationError("assume_role_kwargs: RoleArn is required")
    fields = {name: given.get(field) for field, name in ASSUME_ROLE_FIELDS.items()}
    fields["policy_arns"] = [_item("PolicyArns", p, "arn") for p in given.get("PolicyArns") or []]
    fields["tags"] = [
        (_item("Tags", t, "Key"), _item("Tags", t, "Value")) for t in given.get("Tags") or []
    ]
    fields["transitive_tag_keys"] = list(given.get("TransitiveTagKeys") or [])
    fields["provided_contexts"] = [
        (_item("ProvidedContexts", c, "ProviderArn"), _item("ProvidedContexts", c, "ContextAssertion"))
        for c in given.get("ProvidedContexts") or []
    ]
    if fields["duration_seconds"] is not None:
        fields["duration_seconds"] = _whole("DurationSeconds", fields["duration_seconds"])
    return fields


def _item(field, entry, key):
    if not isinstance(entry, dict) or key not in entry:
        raise ConfigurationError(f"assume_role_kwargs: each of {field} is a dict with {key}")
    return entry[key]


def _whole(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigurationError(f"{name}: {value!r} is not a whole number of seconds")
    if value < 0:
        raise ConfigurationError(f"{name}: {value!r} is negative")
    return int(value)


def _argv(name, command):
    if isinstance(command, str):
        # A command line, run by the shell as credential_process lines are.
        return ["sh", "-c", command]
    argv = [str(part) for part in command]
    if not argv:
        raise ConfigurationError(f"{name}: the command is empty")
    return argv


def _custom(kwargs):
    method = kwargs.get("custom_credentials_method")
    if not callable(method):
        raise ConfigurationError(
            "custom_credentials_method: method='custom' needs a callable returning "
            "access_key, secret_key, token and expiry_time"
        )
    args = kwargs.get("custom_credentials_method_args") or {}
    if not isinstance(args, dict):
        raise ConfigurationError("custom_credentials_method_args: expected a dict of keyword arguments")

    def credentials():
        return custom_result(method(**args))

    return credentials


def custom_result(result):
    """A custom method's answer as the engine reads it (its fields are the
    engine's to check): an aware ``expiry_time`` as ISO 8601 text; a naive
    one is refused, since there is no telling whose clock it means."""
    if not isinstance(result, dict):
        raise ConfigurationError(
            "custom_credentials_method must return a dict with access_key, secret_key, "
            f"token and expiry_time, not {type(result).__name__}"
        )
    expiry = result.get("expiry_time")
    if not isinstance(expiry, datetime.datetime):
        return result
    if expiry.tzinfo is None or expiry.utcoffset() is None:
        raise ConfigurationError(
            f"custom_credentials_method returned a naive expiry_time ({expiry}): "
            "give it a time zone, e.g. datetime.timezone.utc"
        )
    return {**result, "expiry_time": expiry.isoformat()}


def _iot(kwargs):
    for required in ("endpoint", "role_alias", "certificate"):
        if not kwargs.get(required):
            raise ConfigurationError(f"{required}: method='iot' needs it")
    if (kwargs.get("private_key") is None) == (kwargs.get("pkcs11") is None):
        raise ConfigurationError("method='iot' needs private_key or pkcs11 (one of them)")
    iot = {
        "endpoint": kwargs["endpoint"],
        "role_alias": kwargs["role_alias"],
        "thing_name": kwargs.get("thing_name"),
        "duration_seconds": None,
        "pkcs11": _pkcs11(kwargs.get("pkcs11")),
    }
    if kwargs.get("duration_seconds") is not None:
        iot["duration_seconds"] = _whole("duration_seconds", kwargs["duration_seconds"])
    for name in ("certificate", "private_key", "ca"):
        iot[f"{name}_file"], iot[f"{name}_pem"] = file_or_pem(name, kwargs.get(name))
    return iot


def file_or_pem(name, value):
    """(path, None) for a path, (None, text) for PEM bytes or text."""
    if value is None:
        return (None, None)
    if isinstance(value, (bytes, bytearray)):
        return (None, bytes(value).decode("ascii"))
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return (None, value)
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value), None)
    raise ConfigurationError(f"{name}: expected a path, or PEM bytes or text")


def _pkcs11(given):
    if given is None:
        return None
    if not isinstance(given, dict):
        raise ConfigurationError(f"pkcs11: expected a dict with {', '.join(PKCS11_FIELDS)}")
    unknown = sorted(set(given) - set(PKCS11_FIELDS))
    if unknown:
        raise ConfigurationError(f"pkcs11: unknown {', '.join(unknown)}; it takes {', '.join(PKCS11_FIELDS)}")
    for required in ("pkcs11_lib", "user_pin", "private_key_label"):
        if not given.get(required):
            raise ConfigurationError(f"pkcs11: {required} is required")
    if given.get("slot_id") is None and not given.get("token_label"):
        raise ConfigurationError("pkcs11: slot_id or token_label is required")
    key = {name: given.get(name) for name in PKCS11_FIELDS}
    key["user_pin"] = str(key["user_pin"])
    return key
