"""What a W&B answer's status means: the one status -> error table.

Each HTTP status (or an error body's ``code``, when the status line said 200)
maps to the typed error raised and a message saying what to do next. The
transport only reads the wire (the body's message and ``code``,
``Retry-After``, ``Location``, in :mod:`._wire`) and asks here.
"""

from __future__ import annotations

from langchain_wandb_router.errors import (
    WandbAPIError,
    WandbAuthenticationError,
    WandbConcurrencyLimitError,
    WandbContextOverflowError,
    WandbError,
    WandbInvalidRequestError,
    WandbModelNotFoundError,
    WandbPermissionError,
    WandbQuotaError,
    WandbRateLimitError,
)

__all__ = ["CODE_STATUS", "STATUS_KINDS", "error_for_status", "status_for_code"]


_REDIRECT = (
    "W&B answered '{model}' with a redirect ({status}) to {location}; redirects "
    "are not followed so the API key stays with base_url. Check "
    "WANDB_INFERENCE_BASE_URL."
)
_QUOTA = (
    "W&B quota or spend cap reached ({status}: {detail}). Raise the limit in your "
    "W&B billing settings; retrying will not help."
)

# kind -> (error class, message template). Templates see model, status, detail,
# hint and location.
_KINDS: dict[str, tuple[type[WandbError], str]] = {
    "redirect": (WandbAPIError, _REDIRECT),
    "auth": (
        WandbAuthenticationError,
        "W&B rejected the credentials ({status}: {detail}). Check WANDB_API_KEY, "
        "and that the team/project (project=, WANDB_INFERENCE_PROJECT) exists and "
        "is yours.",
    ),
    "quota": (WandbQuotaError, _QUOTA),
    "permission": (
        WandbPermissionError,
        "W&B refused the request ({status}: {detail}). W&B Inference may not be "
        "enabled for this organization or region.",
    ),
    "personal_account": (
        WandbPermissionError,
        "W&B refused the request ({status}: {detail}). Send a team project: "
        "project='team/project' or WANDB_INFERENCE_PROJECT.",
    ),
    "not_found": (
        WandbModelNotFoundError,
        "W&B does not serve model '{model}' ({status}: {detail}).{hint}",
    ),
    "context_overflow": (
        WandbContextOverflowError,
        "The input is too long for '{model}' ({status}: {detail}). Shorten it, or "
        "route to a model with a larger context window.",
    ),
    "invalid_request": (
        WandbInvalidRequestError,
        "W&B rejected the request for '{model}' ({status}: {detail}).",
    ),
    "concurrency": (
        WandbConcurrencyLimitError,
        "W&B's concurrency limit is full for '{model}' ({status}: {detail}); "
        "requests in flight must finish first (see max_in_flight).",
    ),
    "rate_limit": (
        WandbRateLimitError,
        "W&B rate limit hit for '{model}' ({status}: {detail}).",
    ),
    "server": (
        WandbAPIError,
        "W&B server error for '{model}' ({status}: {detail}).",
    ),
}

# HTTP status -> kind; anything else (5xx, 408, 409, odd 4xx) is "server".
STATUS_KINDS: dict[int, str] = {
    400: "invalid_request",
    401: "auth",
    402: "quota",
    403: "permission",
    404: "not_found",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
}

# W&B/OpenAI error ``code`` strings -> the HTTP status they stand for. Used when
# the status line says 200 but the body (or an SSE event) carries an error.
CODE_STATUS: dict[str, int] = {
    "rate_limit_exceeded": 429,
    "invalid_api_key": 401,
    "insufficient_quota": 402,
    "quota_exceeded": 402,
    "model_not_found": 404,
    "context_length_exceeded": 400,
    "server_error": 500,
}

_OVERFLOW_CODES = frozenset({"context_length_exceeded"})
_QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})
_OVERFLOW_HINTS = ("context length", "context window", "maximum context", "too long")


def status_for_code(code: object) -> int:
    """The HTTP status an error body's ``code`` stands for.

    An int (or a string of digits) in 400..599 is a status already; known
    string codes map through :data:`CODE_STATUS`; anything else is a server
    fault (500).
    """
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool):
        return code if 400 <= code <= 599 else 500
    if isinstance(code, str):
        return CODE_STATUS.get(code, 500)
    return 500


def _kind_of(status: int, detail: str, code: str | None) -> str:
    if 300 <= status < 400:
        return "redirect"
    kind = STATUS_KINDS.get(status, "server")
    if kind == "invalid_request":
        lowered = detail.lower()
        if code in _OVERFLOW_CODES or any(h in lowered for h in _OVERFLOW_HINTS):
            return "context_overflow"
    elif kind == "rate_limit":
        lowered = detail.lower()
        # 2025-era W&B answered these with 429 though waiting cannot help.
        if code in _QUOTA_CODES or "quota" in lowered:
            return "quota"
        if "personal account" in lowered:
            return "personal_account"
        if "concurrency" in lowered:
            return "concurrency"
    return kind


def _not_found_hint(successor: str | None) -> str:
    if successor:
        return f" It was retired; use 'wandb/{successor}' instead."
    return " Run `wandb-router models --live` to see what W&B serves now."


def error_for_status(
    status: int,
    detail: str,
    *,
    model: str,
    retry_after: float | None = None,
    code: str | None = None,
    successor: str | None = None,
    location: str | None = None,
) -> WandbError:
    """Build the typed error for a W&B answer with ``status``.

    Args:
        status: The HTTP status (or the one an error body's code stands for).
        detail: The human message W&B sent, already extracted from the body.
        model: The bare model id the request was for.
        retry_after: Seconds from ``Retry-After``, if W&B sent one.
        code: The body's string ``code`` (``"context_length_exceeded"``...),
            which sharpens the class when the status alone is ambiguous.
        successor: The model that replaced ``model``, named on a 404.
        location: Where a 3xx pointed (redirects are never followed).

    Returns:
        An instance of the class the status stands for, with a message that
        says what to do next.
    """
    kind = _kind_of(status, detail, code)
    cls, template = _KINDS[kind]
    message = template.format(
        model=model,
        status=status,
        detail=detail,
        hint=_not_found_hint(successor) if kind == "not_found" else "",
        location=location or "?",
    )
    return cls(message, status_code=status, model=model, retry_after=retry_after)
