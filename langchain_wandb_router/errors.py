"""Typed errors for W&B Inference, and the scrubbing that keeps keys out of them.

Every class subclasses the matching ``langchain_core.exceptions`` type, so generic
LangChain code (``with_fallbacks(exceptions_to_handle=…)``, agent middleware,
retry helpers) catches them without knowing this package. Messages say what to
do next and never contain the API key. The one table that turns a status (or
an error body's ``code``) into one of them is
:mod:`langchain_wandb_router.transport._status`.

Secrets: every API key that passes
:func:`~langchain_wandb_router.transport._config.check_api_key` is registered
here, and :func:`scrub` masks registered keys in any text. A
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
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

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

__all__ = [
    "BudgetExceededError",
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
    "register_secret",
    "scrub",
    "stream_interrupted",
]

# --------------------------------------------------------------------- secrets

MASK = "***"
"""What a secret is replaced with in every message."""

# Shorter "keys" are placeholders ("k", "test"), not W&B keys (40+ characters);
# masking them would mangle every message that happens to contain the letters.
_MIN_SECRET_LEN = 8

# Replaced, never mutated, so readers iterate a snapshot without a lock.
_secrets: frozenset[str] = frozenset()
_secrets_lock = threading.Lock()


class ProviderRegistrationError(RuntimeError):
    """langchain's provider registry is not the shape :func:`register_provider` hooks.

    Raised instead of guessing when a langchain release changes (or predates)
    the internals the ``wandb:`` provider relies on. ``ChatWandb(...)`` and
    ``WandbRouter(...)`` work with every supported langchain version; pass them
    to ``create_agent`` or the middleware as objects instead of strings.
    """


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
