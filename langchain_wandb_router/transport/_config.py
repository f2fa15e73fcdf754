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

from langchain_wandb_router.errors import (
    MissingAPIKeyError as MissingAPIKeyError,
    register_secret,
)

DEFAULT_BASE_URL = "https://api.inference.wandb.ai/v1"
API_KEY_ENV = "WANDB_API_KEY"
BASE_URL_ENV = "WANDB_INFERENCE_BASE_URL"
PROJECT_ENV = "WANDB_INFERENCE_PROJECT"

# Printable ASCII without space or slash on each side: the project travels in
# the OpenAI-Project header, which the transport encodes as ASCII.
_PROJECT_RE = re.compile(r"^[!-.0-~]+/[!-.0-~]+$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# What an HTTP/1.1 header value may hold and the transport can send as ASCII:
# visible characters, space and tab. Anything else (CR/LF: injection; NUL and
# other controls; non-ASCII) would fail or be misread on the wire.
_HEADER_VALUE_OK = frozenset("\t" + "".join(map(chr, range(0x20, 0x7F))))
# A key (and each side of a project) is one word of visible ASCII.
_VISIBLE_ASCII = frozenset(map(chr, range(0x21, 0x7F)))
# Headers we set ourselves; letting default_headers replace them would either
# leak the key elsewhere or break the wire format.
_RESERVED_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host"}
)


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
    if parts.path.rstrip("/").endswith("/chat/completions"):
        root = url.rstrip("/").removesuffix("/chat/completions")
        msg = (
            f"base_url is the API's root, not its endpoint: use {root!r} (the "
            f"part before /chat/completions, like {DEFAULT_BASE_URL!r})."
        )
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


def _first_bad(value: str, allowed: frozenset[str]) -> tuple[int, str] | None:
    """The index and kind of the first character of ``value`` not in ``allowed``."""
    for index, char in enumerate(value):
        if char not in allowed:
            if char in "\r\n":
                kind = "a line break"
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                kind = "a control character"
            elif ord(char) > 0x7F:
                kind = "a non-ASCII character"
            else:
                kind = "whitespace"
            return index, kind
    return None


def _describe_bad(value: str, allowed: frozenset[str]) -> str | None:
    """``"U+00E9 (a non-ASCII character) at index 4"``, or ``None`` if clean."""
    bad = _first_bad(value, allowed)
    if bad is None:
        return None
    index, kind = bad
    return f"U+{ord(value[index]):04X} ({kind}) at index {index}"


def check_project(value: str, source: str = "project") -> str:
    """Return ``value`` if it is exactly ``team/project`` in printable ASCII.

    Args:
        value: The project, from the argument or the environment.
        source: Where it came from, named in the error.

    Raises:
        ValueError: Naming ``source``; a bad character is shown by code point
            and index.
    """
    if not isinstance(value, str):
        msg = f"{source} must be a str '<team>/<project>', got {type(value).__name__}."
        raise ValueError(msg)  # a ValueError, as for every other bad project
    bad = _describe_bad(value, _VISIBLE_ASCII)
    if bad is not None:
        # The value is not echoed: a control character would garble the line.
        msg = (
            f"{source} must be '<team>/<project>' in printable ASCII (it is sent "
            f"in the OpenAI-Project header); it has {bad}."
        )
    elif not _PROJECT_RE.fullmatch(value):
        msg = (
            f"{source} must be '<team>/<project>' (one slash, no spaces or control "
            f"characters); got {value!r}."
        )
    else:
        return value
    raise ValueError(msg)


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


def check_headers(
    headers: Mapping[str, str] | None, source: str = "default_headers"
) -> dict[str, str]:
    """Return a copy of user headers the transport can send as they are.

    Names must be HTTP tokens; values printable ASCII, space or tab (the
    transport encodes them as ASCII, and CR/LF would inject headers).
    Headers this package sets itself cannot be replaced.

    Args:
        headers: The user's headers, or ``None``.
        source: Where they came from (``default_headers``, a route), named in
            the error.

    Raises:
        TypeError: ``headers`` is not a mapping of str to str.
        ValueError: A bad name or value, or a reserved name. A bad value is
            shown by code point and index, never echoed: it may be a token.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        msg = f"{source} must be a mapping of str to str, got {type(headers).__name__}."
        raise TypeError(msg)
    out: dict[str, str] = {}
    for name, val in headers.items():
        if not isinstance(name, str) or not isinstance(val, str):
            msg = (
                f"Header {_printable(name)} in {source} must map a str to a str, "
                f"got {type(val).__name__}."
            )
            raise TypeError(msg)
        if not _HEADER_NAME_RE.fullmatch(name):
            msg = (
                f"Invalid header name {_printable(name)} in {source}; names are "
                "ASCII letters, digits and !#$%&'*+-.^_`|~ only."
            )
            raise ValueError(msg)
        bad = _describe_bad(val, _HEADER_VALUE_OK)
        if bad is not None:
            msg = (
                f"Header {name!r} in {source} has {bad} in its value; header "
                "values must be printable ASCII (CR, LF and NUL are refused)."
            )
            raise ValueError(msg)
        if name.lower() in _RESERVED_HEADERS:
            msg = (
                f"Header {name!r} in {source} is set by langchain-wandb-router "
                "and cannot be overridden."
            )
            raise ValueError(msg)
        out[name] = val
    return out


def _printable(value: object) -> str:
    """``repr(value)`` safe to print: lone surrogates escaped."""
    return repr(value).encode("utf-8", "backslashreplace").decode()


def check_api_key(key: str, source: str = API_KEY_ENV) -> str:
    """Return ``key`` if it can go in the Authorization header; register it.

    Registering the key (:func:`~langchain_wandb_router.errors.register_secret`)
    is what keeps it out of every error message from here on.

    Args:
        key: The API key.
        source: Where it came from (``api_key`` or ``WANDB_API_KEY``), named
            in the error.

    Raises:
        MissingAPIKeyError: The key is empty or blank.
        ValueError: The key has whitespace, a control or a non-ASCII
            character. Only the index and kind are shown, never the key or
            the character.
    """
    if not key.strip():
        raise missing_key_error()
    bad = _first_bad(key, _VISIBLE_ASCII)
    if bad is not None:
        index, kind = bad
        msg = (
            f"The W&B API key ({source}) has {kind} at index {index} of "
            f"{len(key)}; a key is one word of printable ASCII. Check {source} "
            "(copy it again from https://wandb.ai/authorize)."
        )
        raise ValueError(msg)
    register_secret(key)
    return key
