"""Keeping API keys out of every text this package writes.

Below everything (``errors`` builds on it): every API key the package
validates is registered here, and :func:`scrub` masks the registered keys in
any text before it is quoted in an error, a log line or a trace.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["MASK", "register_secret", "scrub"]

MASK = "***"
"""What a secret is replaced with in every message."""

# Shorter "keys" are placeholders ("k", "test"), not W&B keys (40+ characters);
# masking them would mangle every message that happens to contain the letters.
_MIN_SECRET_LEN = 8

# Replaced, never mutated, so readers iterate a snapshot without a lock.
_secrets: frozenset[str] = frozenset()
_secrets_lock = threading.Lock()


def register_secret(secret: str) -> None:
    """Remember ``secret`` so :func:`scrub` masks it from now on.

    Called for every API key this process validates (a process sees few), so
    any error built anywhere, by any path, is scrubbed without the key being
    passed along to it.

    Args:
        secret: The credential; ignored when shorter than 8 characters.
    """
    global _secrets  # a copy-on-write snapshot, see above
    if len(secret) < _MIN_SECRET_LEN or secret in _secrets:
        return
    with _secrets_lock:
        _secrets = _secrets | {secret}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every registered secret, and each of ``secrets``, masked.

    Scrub before truncating: a cut through a key would leave part of it.

    Args:
        text: Anything about to be quoted: a server's error text, a message.
        secrets: More secrets to mask (e.g. one not registered).

    Returns:
        ``text`` with each occurrence replaced by :data:`MASK`.
    """
    for secret in (*_secrets, *secrets):
        if len(secret) >= _MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, MASK)
    return text
