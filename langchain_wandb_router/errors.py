"""Typed errors for W&B Inference.

Every class subclasses the matching ``langchain_core.exceptions`` type, so generic
LangChain code (``with_fallbacks(exceptions_to_handle=…)``, agent middleware,
retry helpers) catches them without knowing this package. Messages say what to
do next and never contain the API key.
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

__all__ = [
    "BudgetExceededError",
    "NoRouteAvailableError",
    "StreamInterruptedError",
    "WandbAPIError",
    "WandbAuthenticationError",
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
]


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
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.model = model
        self.retry_after = retry_after


class WandbAuthenticationError(WandbError, ModelAuthenticationError):
    """401: the API key is missing or wrong, or the team/project is not yours."""


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
