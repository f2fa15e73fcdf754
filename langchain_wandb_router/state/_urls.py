"""Keeping a Redis URL's password out of anything shown (repr, logs, errors)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["redact_url", "url_secrets"]


def redact_url(url: str) -> str:
    """``url`` with any password (in the authority or the query) masked."""
    parts = urlsplit(url)
    if parts.password is None and "password" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [
            (k, "***" if k.lower() == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def url_secrets(url: str) -> list[str]:
    """The passwords ``url`` carries (authority and query), to scrub from text."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found
