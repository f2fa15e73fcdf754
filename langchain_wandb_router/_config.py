"""Configuration checks shared by ChatWandb, the router and the CLI.

Everything here runs before the network, so bad input fails with a message that
says which argument or environment variable to fix.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from langchain_wandb_router.errors import WandbAuthenticationError

DEFAULT_BASE_URL = "https://api.inference.wandb.ai/v1"
API_KEY_ENV = "WANDB_API_KEY"
BASE_URL_ENV = "WANDB_INFERENCE_BASE_URL"
PROJECT_ENV = "WANDB_INFERENCE_PROJECT"

_PROJECT_RE = re.compile(r"^[^/\s\x00-\x1f\x7f]+/[^/\s\x00-\x1f\x7f]+$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers we set ourselves; letting default_headers replace them would either
# leak the key elsewhere or break the wire format.
_RESERVED_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host"}
)


class MissingAPIKeyError(WandbAuthenticationError):
    """No API key was given and ``WANDB_API_KEY`` is not set."""


def missing_key_error() -> MissingAPIKeyError:
    """The error raised when no key can be found, naming the variable to set."""
    return MissingAPIKeyError(
        f"No W&B API key: pass api_key=... or set the {API_KEY_ENV} environment "
        "variable (get a key at https://wandb.ai/authorize). OPENAI_API_KEY is "
        "never used."
    )


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(value: str | None) -> str:
    """Return a checked base URL without its trailing slash.

    Args:
        value: The ``base_url`` argument, or ``None`` to read
            ``WANDB_INFERENCE_BASE_URL`` (default: W&B's public endpoint).

    Raises:
        ValueError: If the URL is not ``https://…``, or is plain ``http://`` to
            anything but loopback (the key must not travel in clear text).
    """
    url = (value or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        msg = (
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}; got "
            f"{url!r} (set base_url= or {BASE_URL_ENV})."
        )
        raise ValueError(msg)
    if parts.username or parts.password:
        msg = "base_url must not carry credentials; pass api_key= instead."
        raise ValueError(msg)
    if parts.query or parts.fragment:
        # Not echoed: a query string is where a credential might hide.
        msg = (
            f"base_url for {host!r} must not carry a query string or fragment; "
            "pass query parameters with default_query={...}."
        )
        raise ValueError(msg)
    if parts.scheme == "http" and not is_loopback_host(host):
        msg = (
            f"Refusing plain http:// to {host!r}: the API key would travel in clear "
            "text. Use https://, or http:// only for a server on this machine "
            "(127.0.0.1, localhost)."
        )
        raise ValueError(msg)
    return url.rstrip("/")


def chat_url(base_url: str, query: Mapping[str, object] | None = None) -> str:
    """The chat-completions URL, with ``query`` (``default_query=``) appended.

    Values are encoded as httpx encodes ``params=``: lists repeat the key,
    booleans become ``true``/``false``.
    """
    url = f"{base_url}/chat/completions"
    if query:
        url = f"{url}?{httpx.QueryParams(query)}"  # type: ignore[arg-type]
    return url


def check_project(value: str, source: str = "project") -> str:
    """Return ``value`` if it is exactly ``team/project``.

    Raises:
        ValueError: Naming ``source`` (the argument or env var it came from).
    """
    if not isinstance(value, str) or not _PROJECT_RE.match(value):
        msg = (
            f"{source} must be '<team>/<project>' (one slash, no spaces or control "
            f"characters); got {value!r}."
        )
        raise ValueError(msg)
    return value


def resolve_project(value: str | None) -> str | None:
    """The W&B ``team/project`` to attribute usage to, or ``None`` for the default.

    Order: the argument, ``WANDB_INFERENCE_PROJECT``, then ``WANDB_ENTITY`` and
    ``WANDB_PROJECT`` together.
    """
    if value is not None:
        return check_project(value)
    env = os.environ.get(PROJECT_ENV)
    if env:
        return check_project(env, PROJECT_ENV)
    entity, project = os.environ.get("WANDB_ENTITY"), os.environ.get("WANDB_PROJECT")
    if entity and project:
        return check_project(f"{entity}/{project}", "WANDB_ENTITY/WANDB_PROJECT")
    return None


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Validate user headers; CR/LF (header injection) and reserved names refused."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        msg = (
            "default_headers must be a mapping of str to str, got "
            f"{type(headers).__name__}."
        )
        raise TypeError(msg)
    out: dict[str, str] = {}
    for name, val in headers.items():
        if not isinstance(name, str) or not isinstance(val, str):
            msg = f"Header {name!r} must map a str to a str, got {type(val).__name__}."
            raise TypeError(msg)
        if not _HEADER_NAME_RE.match(name):
            msg = f"Invalid header name {name!r}."
            raise ValueError(msg)
        if any(ch in val for ch in "\r\n\x00"):
            msg = f"Header {name!r} has a CR, LF or NUL character; refused."
            raise ValueError(msg)
        if name.lower() in _RESERVED_HEADERS:
            msg = (
                f"Header {name!r} is set by langchain-wandb-router and cannot be "
                "overridden."
            )
            raise ValueError(msg)
        out[name] = val
    return out


def check_api_key(key: str) -> str:
    """Refuse keys that would corrupt the Authorization header."""
    if not key.strip():
        raise missing_key_error()
    if any(ch in key for ch in "\r\n\x00") or key != key.strip():
        msg = (
            "The W&B API key has whitespace or control characters; check WANDB_API_KEY."
        )
        raise ValueError(msg)
    return key
