"""ChatWandb: a LangChain chat model for W&B Inference.

The public class: its usage guide (the class docstring), its identity (LLM
type, secrets, serialized id, tracing parameters) and profile (catalog entry,
token counts, structured output defaults). It stands on three layers, each one
concern: :class:`~langchain_wandb_router.chat._settings.WandbSettings` (fields
and validators), :class:`~langchain_wandb_router.chat._params.WandbParams`
(parameters and payloads, cached per configuration) and
:class:`~langchain_wandb_router.chat._calls.WandbCalls` (the call hooks).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.language_models import (
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.messages import BaseMessage, get_buffer_string
from langchain_core.runnables import Runnable

from langchain_wandb_router.catalog._models import (
    ModelInfo,
    get_model_info,
    strip_prefix,
)
from langchain_wandb_router.chat._calls import WandbCalls
from langchain_wandb_router.chat._structured import json_structured_output
from langchain_wandb_router.chat._tokens import (
    estimate_message_tokens,
    estimate_text_tokens,
)

__all__ = ["ChatWandb"]


class ChatWandb(WandbCalls):
    r"""W&B Inference chat model: Qwen3, DeepSeek, Llama, Kimi, GLM, gpt-oss and more.

    Setup:
        Install ``langchain-wandb-router`` and set your key:

        .. code-block:: bash

            pip install langchain-wandb-router
            export WANDB_API_KEY="..."
            # optional: attribute usage to a team project
            export WANDB_INFERENCE_PROJECT="my-team/my-project"

    Key init args — completion params:
        model: str
            W&B model id; ``"Qwen/…"``, ``"wandb/Qwen/…"`` and ``"wandb:Qwen/…"``
            all work. LoRA artifacts (``"wandb-artifact:///…"``) too.
        temperature: float | None
        max_tokens: int | None
            Sent to W&B as ``max_tokens``.
        reasoning_effort: str | None
            For reasoning models that accept it.
        enable_thinking: bool | None
            Turns thinking on or off on models where it is a default
            (``chat_template_kwargs.enable_thinking``).

    Key init args — client params:
        api_key: SecretStr | None
            Defaults to ``WANDB_API_KEY``. ``OPENAI_API_KEY`` is never read.
        base_url: str
            Defaults to ``WANDB_INFERENCE_BASE_URL``, else W&B's endpoint.
        project: str | None
            ``"team/project"``, sent as ``OpenAI-Project``. Defaults to
            ``WANDB_INFERENCE_PROJECT``, else ``WANDB_ENTITY/WANDB_PROJECT``.
        default_headers: Mapping[str, str] | None
        timeout: float | httpx.Timeout | None
            Per step of one request: connect, each write, each read, the wait
            for a pooled connection. Default 10 s to connect, 600 s for the
            rest. A server that keeps sending a byte now and then never trips
            it; ``deadline`` bounds that.
        deadline: float | None
            Seconds for the whole call: every attempt, its retries and the
            backoff sleeps between them. No connect, write, read or pool wait
            goes past it, a slowly trickling server included; when it passes,
            ``WandbTimeoutError`` (or ``StreamInterruptedError`` once a stream
            has yielded output). Must be > 0. Default ``None``: no bound but
            ``timeout``. A tighter deadline set by a caller (WandbRouter's
            ``deadline=``) applies as well.
        default_query: Mapping[str, object] | None
            Query parameters appended to every request URL.
        max_retries: int
            Retries on 408/409/429/5xx, timeouts and connection errors, with
            backoff, jitter and ``Retry-After``. Default 2. None is made (nor
            slept for) that would start after the deadline.
        disable_fast_paths: bool
            Request messages and v0 stream chunks are built by converters of
            ours, proven equal to langchain-openai's on the langchain-openai,
            langchain-core (and, for chunks, pydantic) releases they were
            tested with; on any other release langchain-openai's own are used.
            ``True`` uses langchain-openai's for this model, as does
            ``LANGCHAIN_WANDB_ROUTER_FAST_PATHS=0`` in the environment for the
            whole process (read at import). Output is the same either way.
            Default ``False``.

        OpenAI-only fields (``organization``, Responses API settings, openai
        SDK clients...) are refused with a ValueError that says what to use.

    Instantiate:
        .. code-block:: python

            from langchain_wandb_router import ChatWandb

            llm = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")

    Invoke:
        .. code-block:: python

            llm.invoke("Hello!").content

    Stream:
        .. code-block:: python

            for chunk in llm.stream("Tell me a story"):
                print(chunk.text, end="")

    Tool calling:
        .. code-block:: python

            from pydantic import BaseModel, Field

            class GetWeather(BaseModel):
                '''Get the current weather in a given location.'''

                location: str = Field(..., description="e.g. San Francisco, CA")

            llm.bind_tools([GetWeather]).invoke("Weather in Paris?").tool_calls

    Structured output:
        .. code-block:: python

            class Joke(BaseModel):
                setup: str
                punchline: str

            llm.with_structured_output(Joke).invoke("A joke about cats")

    Reasoning:
        .. code-block:: python

            thinker = ChatWandb(model="wandb/Qwen/Qwen3-235B-A22B-Thinking-2507")
            msg = thinker.invoke("Is 9.11 larger than 9.9?")
            msg.additional_kwargs["reasoning_content"]  # also a "reasoning" block

    Token usage and cost:
        .. code-block:: python

            msg = llm.invoke("Hello")
            msg.usage_metadata  # input/output/total tokens
            msg.response_metadata["cost_usd"]  # from the catalog's prices

    Model profile:
        .. code-block:: python

            llm.profile["max_input_tokens"], llm.model_info.pricing
    """

    # ------------------------------------------------------------------ identity

    @property
    def _llm_type(self) -> str:
        return "chat-wandb"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Map the key field to its env var so ``dumps`` never writes it."""
        return {"openai_api_key": "WANDB_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """ChatWandb can be serialized (without its key)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """The defining module, which ``langchain_core.load`` imports.

        BaseChatOpenAI returns OpenAI's legacy namespace; ours is core's default.
        Load with ``loads(text, allowed_objects=[ChatWandb],
        valid_namespaces=["langchain_wandb_router"],
        secrets_map={"WANDB_API_KEY": key})``.
        """
        # Stable across moves: the module ChatWandb was first published in
        # (kept as a re-export), so what was serialized then still loads.
        return ["langchain_wandb_router", "chat_model"]

    @property
    def model_info(self) -> ModelInfo | None:
        """The catalog entry for this model (``None`` for unknown ids)."""
        return get_model_info(self.model_name)

    def _resolve_model_profile(self) -> ModelProfile | None:
        info = get_model_info(self.model_name)
        return info.to_profile() if info is not None else None

    def _use_responses_api(self, payload: dict[str, Any]) -> bool:
        return False

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "wandb"
        # Tracing must never raise: strip the prefix, validate nothing.
        params["ls_model_name"] = strip_prefix(
            str(kwargs.get("model", self.model_name))
        )
        return params

    # ------------------------------------------------------------ token counts

    def get_num_tokens(self, text: str) -> int:
        """Count with ``custom_get_token_ids`` if given, else estimate offline.

        W&B models use their own tokenizers, so tiktoken's counts would be wrong.
        """
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return estimate_text_tokens(text)

    def get_num_tokens_from_messages(  # type: ignore[override]
        self, messages: list[BaseMessage], tools: Any = None
    ) -> int:
        """Count input tokens; see :meth:`get_num_tokens`."""
        if self.custom_get_token_ids is not None:
            return sum(self.get_num_tokens(get_buffer_string([m])) for m in messages)
        return estimate_message_tokens(messages)

    # ------------------------------------------------------- structured output

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """As BaseChatOpenAI's, but ``method`` defaults to ``"json_schema"``.

        W&B constrains the answer to the schema through ``response_format``
        (``json_schema``), which needs no tool call; BaseChatOpenAI defaults to
        ``"function_calling"``. Pass ``method="function_calling"`` or
        ``"json_mode"`` to choose otherwise. ``strict=True`` is sent for a
        pydantic class as for a dict schema (``strict`` and
        ``additionalProperties: false``).
        """
        if method == "json_schema" and strict is not None and isinstance(schema, type):
            # The parent binds the class itself and builds the request from it
            # later, without ``strict``: bind the schema as sent instead (the
            # router does the same), parsed into the class.
            options: dict[str, Any] = {"method": method, "include_raw": include_raw}
            return json_structured_output(
                self, schema, strict=strict, **options, **kwargs
            )
        return super().with_structured_output(
            schema, method=method, include_raw=include_raw, strict=strict, **kwargs
        )
