"""Typed errors for W&B Inference, and the table saying which status means which.

Every class subclasses the matching ``langchain_core.exceptions`` type, so generic
LangChain code (``with_fallbacks(exceptions_to_handle=…)``, agent middleware,
retry helpers) catches them without knowing this package. Messages say what to
do next and never contain the API key. :func:`error_for_status` is the one place
that turns a status (or an error body's ``code``) into one of them.

Secrets: every API key that passes
:func:`~langchain_wandb_router.transport._config.check_api_key` is registered
(:mod:`langchain_wandb_router._secrets`, re-exported here), and :func:`scrub`
masks registered keys in any text. A
:class:`WandbError` scrubs its own message and notes, so a server that echoes
the key (``"invalid key Bearer abc…"``) cannot put it in an exception, a log
line that quotes one, or a trace.

Every exception class of the package is defined here (other modules re-export
them where they were first published). The tree, with the
``langchain_core.exceptions`` (or builtin) base each class adds in brackets::

    WandbError [ModelError]
        WandbAuthenticationError [ModelAuthenticationError]   401
            MissingAPIKeyError                                 no key at all
        WandbPermissionError [ModelPermissionDeniedError]      403
        WandbQuotaError [ModelPermissionDeniedError]           402
        WandbInvalidRequestError [ModelInvalidRequestError]    400, 413, 422
            WandbContextOverflowError [ContextOverflowError]
        WandbModelNotFoundError [ModelNotFoundError]           404
            WandbModelRetiredError                             before any request
        WandbRateLimitError [ModelRateLimitError]              429
            WandbConcurrencyLimitError                         W&B's in-flight cap
        WandbAPIError [ModelAPIError]                          5xx, other answers
        WandbTimeoutError [ModelTimeoutError]
        WandbConnectionError [ModelConnectionError]
            StreamInterruptedError                             after output
            StateUnavailableError                              Redis, on_error="closed"
        NoRouteAvailableError                                  router
        BudgetExceededError                                    router
    SlotTimeoutError [TimeoutError]                            router state
    ProviderRegistrationError [RuntimeError]                   register_provider
    DecisionInputError [ValueError]                            WandbDecisions input
"""

from __future__ import annotations

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from langchain_wandb_router._secrets import register_secret, scrub

__all__ = [
    "BudgetExceededError",
    "DecisionInputError",
    "MissingAPIKeyError",
    "NoRouteAvailableError",
    "ProviderRegistrationError",
    "SlotTimeoutError",
    "StateUnavailableError",
    "StreamInterruptedError",
    "WandbAPIError",
    "WandbAuthenticationError",
    "WandbConcurrencyLimitError",
    "WandbConnectionError",
    "WandbContextOverflowError",
    "WandbError",
    "WandbInvalidRequestError",
    "WandbModelNotFoundError",
    "WandbModelRetiredError",
    "WandbPermissionError",
    "WandbQuotaError",
    "WandbRateLimitError",
    "WandbTimeoutError",
    "error_for_status",
    "not_found_advice",
    "register_secret",
    "scrub",
    "status_for_code",
    "stream_interrupted",
]


class ProviderRegistrationError(RuntimeError):
    """langchain's provider registry is not the shape :func:`register_provider` hooks.

    Raised instead of guessing when a langchain release changes (or predates)
    the internals the ``wandb:`` provider relies on. ``ChatWandb(...)`` and
    ``WandbRouter(...)`` work with every supported langchain version; pass them
    to ``create_agent`` or the middleware as objects instead of strings.
    """


class WandbError(ModelError):
    """Base class of every error this package raises about a model call.

    Attributes:
        status_code: The HTTP status W&B answered with, if any.
        model: The bare W&B model id the request was for, if known.
        retry_after: Seconds W&B asked us to wait (``Retry-After``), if given.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        # The one net under every path: whatever text a message quotes (a
        # server's, an HTTP library's), the key does not survive into args,
        # str(), repr() or logs.
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.model = model
        self.retry_after = retry_after

    def add_note(self, note: str, /) -> None:
        """Add a note (the router lists its attempts there), scrubbed."""
        super().add_note(scrub(note))


class WandbAuthenticationError(WandbError, ModelAuthenticationError):
    """401: the API key is missing or wrong, or the team/project is not yours."""


class MissingAPIKeyError(WandbAuthenticationError):
    """No API key was given and ``WANDB_API_KEY`` is not set.

    Built by :func:`~langchain_wandb_router.transport._config.missing_key_error`,
    which names the variable to set.
    """


class WandbPermissionError(WandbError, ModelPermissionDeniedError):
    """403: the region or organization may not use W&B Inference."""


class WandbQuotaError(WandbError, ModelPermissionDeniedError):
    """402: the account's quota or spend cap is reached; retrying will not help."""


class WandbInvalidRequestError(WandbError, ModelInvalidRequestError):
    """400/422: W&B rejected a parameter or the request's shape."""


class WandbContextOverflowError(WandbInvalidRequestError, ContextOverflowError):
    """The input is longer than the model's context window."""


class WandbModelNotFoundError(WandbError, ModelNotFoundError):
    """404: W&B does not serve this model (unknown id, or retired)."""


class WandbModelRetiredError(WandbModelNotFoundError):
    """The model is retired; raised before any request, naming the successor.

    Attributes:
        successor: The bare id W&B named as the replacement, if any.
    """

    def __init__(
        self, message: str, *, model: str | None = None, successor: str | None = None
    ) -> None:
        super().__init__(message, status_code=None, model=model)
        self.successor = successor


class WandbRateLimitError(WandbError, ModelRateLimitError):
    """429: a concurrency or rate limit was hit; retryable."""


class WandbConcurrencyLimitError(WandbRateLimitError):
    """429: W&B's cap on requests in flight (per project and model) is full.

    Backpressure rather than failure: a slot frees when a request in flight
    ends, so the router waits for one instead of spending a retry. Other 429s
    (``WandbRateLimitError``) are retried like server errors.
    """


class WandbAPIError(WandbError, ModelAPIError):
    """5xx (and other unexpected answers): W&B failed; retryable."""


class WandbTimeoutError(WandbError, ModelTimeoutError):
    """The request timed out; retryable."""


class WandbConnectionError(WandbError, ModelConnectionError):
    """W&B could not be reached, or the connection dropped; retryable."""


class StreamInterruptedError(WandbConnectionError):
    """A stream failed after yielding output.

    Raised instead of retrying or falling back, so a partial answer is never
    silently spliced with another attempt's output. ``partial_text`` holds what
    had arrived.
    """

    is_retryable = False

    def __init__(
        self, message: str, *, model: str | None = None, partial_text: str = ""
    ) -> None:
        super().__init__(message, model=model)
        self.partial_text = partial_text


class StateUnavailableError(WandbConnectionError):
    """Shared router state (Redis) could not be reached and ``on_error="closed"``.

    Not retryable: sending the model request again does not bring Redis back.
    """

    is_retryable = False


class NoRouteAvailableError(WandbError):
    """The router had no model it could use for this request.

    Attributes:
        reasons: For each route, why it was excluded or how it failed.
    """

    def __init__(self, message: str, *, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class BudgetExceededError(WandbError):
    """The router's ``budget_usd`` is spent; raised before any request."""


class SlotTimeoutError(TimeoutError):
    """No concurrency slot for a route came free before the caller's deadline.

    Attributes:
        key: The route key that was full.
        limit: The limit in force when the wait gave up (hard or adaptive).
    """

    def __init__(self, key: str, limit: int | None) -> None:
        super().__init__(
            f"No concurrency slot for {key} came free before the deadline "
            f"(limit {limit}); raise max_in_flight or the deadline, or add routes."
        )
        self.key = key
        self.limit = limit


class DecisionInputError(ValueError):
    """A decision request WandbDecisions cannot answer; raised before any request.

    No questions, a ``Box`` question, media blocks or non-JSON values in the
    state or the questions, or a DecisionSelector set up with unknown labels.
    """


# ------------------------------------------------------------- stream interrupted


def stream_interrupted(
    exc: BaseException,
    model: str | None,
    *,
    cause: str | None = None,
    hint: str = "",
    partial_text: str | None = None,
) -> StreamInterruptedError:
    """The error a stream raises when ``exc`` breaks it after output was yielded.

    The one builder of :class:`StreamInterruptedError`: the transport, ChatWandb
    and the router each call it at their level. An ``exc`` that already is one
    (raised by a lower level) is returned as it is, with ``partial_text`` set
    when given, so the error is never wrapped twice.

    Args:
        exc: What broke the stream.
        model: The model the stream was from.
        cause: How to describe ``exc`` in the message; by default its type,
            plus its text for this package's own errors (an HTTP library's
            text may name the URL).
        hint: Appended to the cause (what to change, e.g. the deadline).
        partial_text: The output already yielded, when the caller kept it.
    """
    if isinstance(exc, StreamInterruptedError):
        if partial_text is not None:
            exc.partial_text = partial_text
        return exc
    if cause is None:
        name = type(exc).__name__
        cause = f"{name}: {exc}" if isinstance(exc, WandbError) else name
    if hint:
        cause = f"{cause}: {hint}"
    return StreamInterruptedError(
        f"The stream from '{model}' broke after output had been yielded ({cause}). "
        "Not retried and not sent to another model, so the partial answer is not "
        "spliced with another attempt's output.",
        model=model,
        partial_text=partial_text or "",
    )


# --------------------------------------------------------------------------- table
# What each HTTP status means for a W&B call: the class raised and the message,
# which says what to do next. The transport only reads the wire (the body's
# message and ``code``, ``Retry-After``, ``Location``) and asks here.

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


def _not_found_hint(successor: str | None, advice: str | None) -> str:
    if successor:
        return f" It was retired; use 'wandb/{successor}' instead." + (advice or "")
    listing = " Run `wandb-router models --live` to see what W&B serves now."
    return (advice or "") + listing


def not_found_advice(
    *, suggestion: str | None, base_url: str | None, default_base_url: str
) -> str | None:
    """What a 404 for a model should add, beyond "not served".

    Args:
        suggestion: A catalog id close to the one asked for (a typo).
        base_url: The base URL the request went to, when it is not W&B's own:
            a wrong base URL answers 404 for every model.
        default_base_url: W&B's base URL, to compare with.
    """
    advice = ""
    if suggestion:
        advice += f" Did you mean 'wandb/{suggestion}'?"
    if base_url:
        advice += (
            f" Check base_url ({base_url}): a wrong base URL answers 404 for every "
            f"model; W&B's is {default_base_url} (it ends in /v1, without "
            "/chat/completions)."
        )
    return advice or None


def error_for_status(
    status: int,
    detail: str,
    *,
    model: str,
    retry_after: float | None = None,
    code: str | None = None,
    successor: str | None = None,
    location: str | None = None,
    advice: str | None = None,
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
        advice: More for a 404 to say (:func:`not_found_advice`).

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
        hint=_not_found_hint(successor, advice) if kind == "not_found" else "",
        location=location or "?",
    )
    return cls(message, status_code=status, model=model, retry_after=retry_after)
