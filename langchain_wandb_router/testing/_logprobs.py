"""Token log probabilities in OpenAI's shape, made up but deterministic.

A token is a word with its trailing space (the pieces a stream sends), so a
stream's chunk carries exactly the logprobs of its delta and the JSON reply
carries them all. The chosen token is always the likeliest of its
``top_logprobs`` list, as in greedy decoding.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

__all__ = ["PIECE_RE", "content_logprobs"]

PIECE_RE = re.compile(r"\S+\s*|\s+")
# Stand-ins for the tokens the model did not pick; fixed so replies repeat.
_ALTERNATIVES = (
    *("the", " a", " and", " of", " to", ",", ".", " is", " it", " in"),
    *(" for", " on", " that", " with", " as", " at", " by", " from", " or"),
)


def _logprob(token: str) -> float:
    """A logprob in [-0.5, -0.01] that depends only on ``token``."""
    return -round(0.01 * (1 + zlib.crc32(token.encode()) % 50), 4)


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def token_logprobs(token: str, top: int) -> dict[str, Any]:
    """One ``content`` item: ``token`` and ``top`` likeliest tokens, best first.

    Args:
        token: The token sent.
        top: How many entries ``top_logprobs`` holds (0 to 20).
    """
    chosen = _logprob(token)
    others = [a for a in _ALTERNATIVES if a != token]
    alternatives = [
        _entry(other, round(chosen - 1.5 * (rank + 1), 4))
        for rank, other in enumerate(others[: max(0, top - 1)])
    ]
    ranked = [_entry(token, chosen), *alternatives] if top > 0 else []
    return {**_entry(token, chosen), "top_logprobs": ranked}


def content_logprobs(text: str, top: int) -> dict[str, Any]:
    """A choice's ``logprobs`` object for ``text``: ``{"content": [...]}``."""
    return {"content": [token_logprobs(p, top) for p in PIECE_RE.findall(text)]}
