"""ChatWandb's settings: its fields, their validators and what they resolve to.

:class:`WandbSettings` is the first layer of ChatWandb on BaseChatOpenAI: the
W&B fields (``model``, ``api_key``, ``base_url``, ``project``, ``deadline``,
retries, fast paths...), the validators that normalize and check them, and
``validate_environment``, which resolves the key, base URL and project into the
request headers and URLs (private attributes the call hooks read).
"""

from __future__ import annotations

from typing import Any, Self, cast

from langchain_core.utils import secret_from_env
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_wandb_router.catalog._models import (
    get_model_info,
    normalize_model_id,
    retired_error,
    wrong_case_error,
)
from langchain_wandb_router.chat._fields import check_refused_fields
from langchain_wandb_router.transport._config import (
    API_KEY_ENV,
    chat_url,
    check_api_key,
    check_headers,
    missing_key_error,
    resolve_base_url,
    resolve_project,
)
from langchain_wandb_router.transport._retry import DEFAULT_POLICY, RetryPolicy

WANDB_EXTRAS = frozenset({"top_k", "repetition_penalty", "min_p"})
"""Sampling arguments W&B accepts beyond OpenAI's (sent in the body as given)."""

__all__ = ["WandbSettings"]

_USER_AGENT = "langchain-wandb-router/0.1"


class WandbSettings(BaseChatOpenAI):
    """ChatWandb's fields and validators; see :class:`ChatWandb` for their use."""

    # Pydantic quotes the constructor's input (the start of it) in validation
    # errors; that input may hold the key.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    model_name: str = Field(alias="model")
    """W&B model id (the bare id is what the request carries)."""

    openai_api_key: SecretStr | None = Field(
        alias="api_key", default_factory=secret_from_env("WANDB_API_KEY", default=None)
    )
    """W&B API key; defaults to ``WANDB_API_KEY``."""

    openai_api_base: str | None = Field(alias="base_url", default=None)
    """W&B Inference base URL; ``WANDB_INFERENCE_BASE_URL`` or W&B's endpoint."""

    project: str | None = None
    """W&B ``team/project`` sent as the ``OpenAI-Project`` header."""

    enable_thinking: bool | None = None
    """``chat_template_kwargs.enable_thinking`` for default-on/off reasoning models."""

    cache_salt: str | None = None
    """W&B's ``cache_salt``: prompts share W&B's prefix cache only with the same
    salt, so a salt per tenant keeps tenants' cached prompts apart."""

    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Output cap, sent as ``max_tokens``; ``max_completion_tokens`` is accepted."""

    max_retries: int = 2
    """Retries for retryable failures (429, 5xx, timeouts, connection errors)."""

    deadline: float | None = None
    """Seconds for the whole call, retries and backoff included (``None``: none)."""

    retry_policy: RetryPolicy = Field(default=DEFAULT_POLICY, exclude=True)
    """Backoff, ``Retry-After`` handling and the sleep functions (a test seam)."""

    stream_usage: bool | None = True
    """W&B reports usage on every stream; it is always requested."""

    disable_fast_paths: bool = False
    """Build requests and stream chunks with langchain-openai's converters only.

    The fast paths also stay off outside the releases they were proven equal
    against, and when ``LANGCHAIN_WANDB_ROUTER_FAST_PATHS=0`` is set.
    """

    # Never read OpenAI's proxy variable (the field itself is refused).
    openai_proxy: str | None = None

    _headers: dict[str, str] = PrivateAttr(default_factory=dict)
    _url: str = PrivateAttr(default="")
    # The pooled client's key: the URL without default_query.
    _pool_key: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _wandb_extras(cls, data: Any) -> Any:
        """W&B's own sampling arguments go to ``model_kwargs``, without a warning.

        ``top_k``, ``repetition_penalty`` and ``min_p`` are not OpenAI fields;
        langchain-openai would move them with a warning that they may be a
        mistake. For W&B they are not, so they are moved here first (an
        explicit ``model_kwargs`` entry wins).
        """
        if not isinstance(data, dict) or not WANDB_EXTRAS.intersection(data):
            return data
        data = dict(data)
        extras = {name: data.pop(name) for name in WANDB_EXTRAS if name in data}
        data["model_kwargs"] = {**extras, **(data.get("model_kwargs") or {})}
        return data

    @field_validator("model_name", mode="before")
    @classmethod
    def _bare_model_id(cls, value: Any) -> str:
        return normalize_model_id(value)

    @field_validator("cache_salt")
    @classmethod
    def _check_cache_salt(cls, value: str | None) -> str | None:
        if value is not None and not (isinstance(value, str) and value):
            msg = "cache_salt must be a non-empty string (or None), e.g. a tenant id."
            raise ValueError(msg)
        return value

    @field_validator("max_retries")
    @classmethod
    def _check_retries(cls, value: int) -> int:
        if value < 0:
            msg = "max_retries must be >= 0."
            raise ValueError(msg)
        return value

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            msg = "deadline must be > 0 seconds, or None for no deadline."
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Resolve W&B settings; no OpenAI client and no OpenAI env var is involved.

        This replaces (by name) the parent's validator, which would read
        ``OPENAI_API_KEY`` and build openai SDK clients we never use.
        """
        check_refused_fields(self)
        if self.openai_api_key is None or not self.openai_api_key.get_secret_value():
            raise missing_key_error()
        # Named in the error: the argument, or the variable it defaulted to.
        source = "api_key" if "openai_api_key" in self.model_fields_set else API_KEY_ENV
        key = check_api_key(self.openai_api_key.get_secret_value(), source)
        self.openai_api_base = resolve_base_url(self.openai_api_base)
        self.project = resolve_project(self.project)
        if self.n is not None and self.n < 1:
            msg = "n must be at least 1."
            raise ValueError(msg)
        if self.n is not None and self.n > 1 and self.streaming:
            msg = "n must be 1 when streaming."
            raise ValueError(msg)
        headers = {
            **check_headers(self.default_headers),
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if self.project:
            headers["OpenAI-Project"] = self.project
        self._headers = headers
        self._pool_key = chat_url(self.openai_api_base)
        self._url = chat_url(self.openai_api_base, self.default_query)
        info = get_model_info(self.model_name)
        if info is not None and info.is_retired():
            raise retired_error(info)
        if info is None and (wrong := wrong_case_error(self.model_name)):
            raise wrong
        return self

    def _private(self) -> dict[str, Any]:
        """The private attributes, for hot paths.

        Reading ``self._url`` is a failed lookup along a long MRO, then
        pydantic's ``__getattr__``; a call reads several.
        """
        return cast("dict[str, Any]", self.__pydantic_private__)
