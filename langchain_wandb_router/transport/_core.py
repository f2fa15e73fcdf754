"""The request on the wire: our httpcore pools' and a user's httpx client's.

Our pooled default is a bare httpcore pool, so the request is built here:
Host and Content-Length (httpx would add them), identity encoding (nothing to
decompress), per-request timeouts as httpcore's extension, each clamped to the
time left before the call's deadline. Redirects are never followed: httpcore
has no such feature, and a 3xx is a typed error. A user's httpx client builds
its own request; only its timeout is clamped here. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from langchain_wandb_router.errors import WandbAPIError

if TYPE_CHECKING:
    from langchain_wandb_router.transport._http import Request

__all__ = ["answer", "clamped_timeouts", "core_request", "httpx_request"]

_urls: dict[str, tuple[httpcore.URL, bytes]] = {}
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_SKIPPED_HEADERS = frozenset({"host", "content-length", "accept-encoding"})


def _core_url(url: str) -> tuple[httpcore.URL, bytes]:
    """The parsed URL and its ``Host`` header value, parsed once per URL."""
    known = _urls.get(url)
    if known is None:
        parsed = httpcore.URL(url)
        host = parsed.host
        if parsed.port is not None and parsed.port != _DEFAULT_PORTS.get(parsed.scheme):
            host = b"%b:%d" % (host, parsed.port)
        known = _urls[url] = (parsed, host)
    return known


def clamped_timeouts(req: Request) -> dict[str, float | None]:
    """The request's timeouts per phase, none past the call's deadline."""
    timeout = req.timeout
    if not isinstance(timeout, httpx.Timeout):
        timeout = httpx.Timeout(timeout)
    timeouts = {
        "connect": timeout.connect,
        "read": timeout.read,
        "write": timeout.write,
        "pool": timeout.pool,
    }
    if req.deadline is not None:
        left = max(req.deadline - time.monotonic(), 0.0)
        for phase, seconds in timeouts.items():
            if seconds is None or seconds > left:
                timeouts[phase] = left
    return timeouts


def core_request(req: Request) -> httpcore.Request:
    """``req`` for an httpcore pool."""
    url, host = _core_url(req.url)
    headers = [(b"Host", host)]
    headers += [
        (k.encode("ascii"), v.encode("ascii"))
        for k, v in req.headers.items()
        if k.lower() not in _SKIPPED_HEADERS
    ]
    headers += [
        (b"Accept-Encoding", b"identity"),
        (b"Content-Length", b"%d" % len(req.body)),
    ]
    return httpcore.Request(
        b"POST",
        url,
        headers=headers,
        content=req.body,
        extensions={"timeout": clamped_timeouts(req)},
    )


def _core_headers(resp: httpcore.Response, req: Request) -> dict[str, str]:
    """Lower-cased headers; refuses a body encoded despite ``identity``."""
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers
    }
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise WandbAPIError(
            f"W&B answered '{req.model}' with Content-Encoding '{encoding}' "
            "though none was accepted.",
            status_code=resp.status,
            model=req.model,
        )
    return headers


def httpx_request(client: httpx.Client | httpx.AsyncClient, req: Request) -> Any:
    """The request for a user's httpx client, its timeout clamped to the deadline."""
    timeout = (
        req.timeout if req.deadline is None else httpx.Timeout(**clamped_timeouts(req))
    )
    return client.build_request(
        "POST",
        req.url,
        content=req.body,
        headers=req.headers,
        timeout=timeout,
    )


def answer(
    resp: httpcore.Response | httpx.Response, req: Request
) -> tuple[int, Mapping[str, str]]:
    """A response's status and headers, from either wire."""
    if isinstance(resp, httpcore.Response):
        return resp.status, _core_headers(resp, req)
    return resp.status_code, resp.headers
