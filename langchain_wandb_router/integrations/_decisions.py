"""WandbDecisions: LangChain decision questions answered by W&B models.

One request per call: every question becomes a property of one strict
``json_schema`` response format, each with the same shape (``answer``: one
option; ``probabilities``: one number per option), so the model commits to an
answer first and states its distribution after. The probabilities returned
come from the answer tokens' logprobs when the server sends usable ones, else
from the distribution the model stated; ``response_metadata
["probability_source"]`` says which, per question.

Needs ``langchain_core.decisions`` (langchain-core releases after 1.6); this
module is imported only when ``WandbDecisions`` is used.
"""

from __future__ import annotations

from typing import Any, Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)

try:
    from langchain_core.decisions import BaseDecisionModel
except ImportError as exc:  # langchain-core 1.6 (our floor) has no decisions
    msg = (
        "WandbDecisions and DecisionSelector need langchain_core.decisions: "
        "upgrade langchain-core (pip install -U langchain-core)."
    )
    raise ImportError(msg) from exc

from langchain_core.decisions import (
    Choice,
    ClassifierRequest,
    ClassifierResponse,
    Question,
    State,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.utils import secret_from_env
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)
from typing_extensions import override

from langchain_wandb_router.chat import ChatWandb
from langchain_wandb_router.errors import (
    WandbInvalidRequestError,
)
from langchain_wandb_router.integrations._decision_io import (
    SCHEMA_NAME,
    WandbClassifierResponse,
    as_ai,
    call_kwargs,
    prepare,
    response_of,
)

# Core's decision types are re-exported for _decision_selector, behind the
# upgrade hint above.
__all__ = [
    "SCHEMA_NAME",
    "BaseDecisionModel",
    "Choice",
    "ClassifierResponse",
    "WandbClassifierResponse",
    "WandbDecisions",
]


class WandbDecisions(BaseDecisionModel):
    """Typed decision questions (``Choice``, ``Noul``, ``Score``) on W&B models.

    A LangChain decision model: it answers ``langchain_core.decisions``
    questions with probabilities and confidence, so it works wherever one is
    taken, e.g. LangChain's ``ModelRouterMiddleware`` (``classifier=``) and
    ``AutoModeMiddleware``, and behind :class:`DecisionSelector` for
    ``WandbRouter``. Connection arguments are ChatWandb's.

    Setup:
        .. code-block:: python

            from langchain_core.decisions import Choice, Noul
            from langchain_wandb_router import WandbDecisions

            decisions = WandbDecisions(model="wandb/Qwen/Qwen3-235B-A22B-Instruct-2507")

    Ask:
        .. code-block:: python

            response = decisions.invoke(
                {
                    "state": "Production is down since the last deploy.",
                    "questions": {
                        "team": Choice(
                            instructions="Which team should handle this?",
                            criteria={"billing": "Payments.", "technical": "Bugs."},
                        ),
                        "urgent": Noul(instructions="Is this urgent?"),
                    },
                }
            )
            response.choices["team"].choice, response.choices["team"].confidence
            response.nouls["urgent"].noul  # probability of yes

    Probabilities:
        Asked with ``logprobs`` (``logprobs=True``, the default), the answer
        tokens' probabilities are used when the server returns them and they
        map onto the options without ambiguity; otherwise the distribution
        the model states in its answer. A server that refuses ``logprobs`` is
        asked again without, once per instance. The source per question is in
        ``response.response_metadata["probability_source"]``. A ``Choice``'s
        confidence is the probability of the option it answered; a
        ``Score``'s, the probability of its likeliest level.

    Tracing, usage and cost:
        A call is one chain run named ``WandbDecisions`` around one ChatWandb
        LLM run, which carries the usage, ``ls_provider="wandb"`` and
        ``response_metadata["cost_usd"]``, so ``get_usage_metadata_callback``
        and ``get_wandb_cost_callback`` count it once. ``response.usage`` and
        ``response.response_metadata["cost_usd"]`` hold the same.

    Errors:
        Bad input (no questions, a ``Box`` question, media or non-JSON values
        in the state) raises :class:`DecisionInputError` before any request.
        W&B's errors surface as ChatWandb's typed errors; an answer that does
        not fit the schema raises ``WandbAPIError``.

    Async:
        ``await decisions.ainvoke(...)`` runs on ChatWandb's async transport.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        populate_by_name=True,
        hide_input_in_errors=True,  # the input may hold the key
    )

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("WANDB_API_KEY", default=None), repr=False
    )
    """W&B API key; defaults to ``WANDB_API_KEY``."""

    base_url: str | None = None
    """W&B Inference base URL; ``WANDB_INFERENCE_BASE_URL`` or W&B's endpoint."""

    project: str | None = None
    """``team/project`` sent as ``OpenAI-Project`` (ChatWandb's defaults apply)."""

    default_headers: dict[str, str] | None = None
    """Headers sent with every request."""

    timeout: Any = None
    """Seconds (or an ``httpx.Timeout``) per request step, as ChatWandb's."""

    max_retries: int = 2
    """Retries of retryable errors (429, 5xx, timeouts), as ChatWandb's."""

    deadline: float | None = None
    """Seconds for the whole call, retries included (``None``: no bound)."""

    temperature: float | None = 0.0
    """Sampling temperature; 0 so the same state gets the same answer."""

    max_tokens: int | None = None
    """Cap on the answer's tokens (``None``: the model's own)."""

    enable_thinking: bool | None = None
    """Thinking on or off, on models where it is a default."""

    reasoning_effort: str | None = None
    """For reasoning models that accept it."""

    logprobs: bool = True
    """Ask for token logprobs and use them when they are usable."""

    top_logprobs: int = Field(default=10, ge=1, le=20)
    """Alternatives per token asked for (options outside them get none)."""

    model_settings: dict[str, Any] | None = None
    """More ChatWandb arguments (``extra_body``, ``cache_salt``...)."""

    _chat: ChatWandb = PrivateAttr()
    # Set when the server refused ``logprobs``: not asked again.
    _logprobs_refused: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _build_chat(self) -> Self:
        # Built now so a missing key or a retired model fails at construction.
        settings: dict[str, Any] = {
            "model": self.model,
            "api_key": self.api_key,
            "base_url": self.base_url,
            "project": self.project,
            "default_headers": self.default_headers,
            "max_retries": self.max_retries,
            "deadline": self.deadline,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "enable_thinking": self.enable_thinking,
            "reasoning_effort": self.reasoning_effort,
            **(self.model_settings or {}),
        }
        if self.timeout is not None:
            settings["timeout"] = self.timeout
        self._chat = ChatWandb(**{k: v for k, v in settings.items() if v is not None})
        return self

    # ------------------------------------------------------------ identity

    @property
    def _provider(self) -> str:
        return "wandb"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable without its key (``lc_secrets``)."""
        return True

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Map the key field to its env var so ``dumps`` never writes it."""
        return {"api_key": "WANDB_API_KEY"}

    @property
    def chat_model(self) -> ChatWandb:
        """The ChatWandb that sends the requests."""
        return self._chat

    # ------------------------------------------------------------- calls

    @override
    def invoke(
        self,
        input: ClassifierRequest,
        config: RunnableConfig | None = None,
        **_: Any,
    ) -> ClassifierResponse:
        """Answer every question of ``input`` in one request.

        Args:
            input: ``{"state": ..., "questions": {id: Choice | Noul | Score}}``.
            config: Callbacks, tags and metadata for the run.
            **_: Accepted for ``Runnable`` compatibility, ignored.

        Returns:
            A :class:`WandbClassifierResponse`, answers keyed by question id.

        Raises:
            DecisionInputError: The input is not a decision request this model
                answers (raised before any request).
        """
        return self._call_with_config(
            self._run, input, ensure_config(config), run_type="chain"
        )

    @override
    async def ainvoke(
        self,
        input: ClassifierRequest,
        config: RunnableConfig | None = None,
        **_: Any,
    ) -> ClassifierResponse:
        """Async :meth:`invoke`."""
        return await self._acall_with_config(
            self._arun, input, ensure_config(config), run_type="chain"
        )

    def _run(
        self,
        request: ClassifierRequest,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> ClassifierResponse:
        # The config carries the chain run's child callbacks: ChatWandb's LLM
        # run nests under it.
        return self._answer(request, config)

    async def _arun(
        self,
        request: ClassifierRequest,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> ClassifierResponse:
        return await self._aanswer(request, config)

    def _classify(
        self, state: State, questions: dict[str, Question]
    ) -> ClassifierResponse:
        return self._answer({"state": state, "questions": questions}, None)

    async def _aclassify(
        self, state: State, questions: dict[str, Question]
    ) -> ClassifierResponse:
        return await self._aanswer({"state": state, "questions": questions}, None)

    def _answer(
        self, request: ClassifierRequest, config: RunnableConfig | None
    ) -> ClassifierResponse:
        asked, messages = prepare(request)
        logprobs = self.logprobs and not self._logprobs_refused
        try:
            reply = self._chat.invoke(
                messages, config, **call_kwargs(asked, self.top_logprobs, logprobs)
            )
        except WandbInvalidRequestError as exc:
            self._refused(exc, logprobs)
            reply = self._chat.invoke(
                messages, config, **call_kwargs(asked, self.top_logprobs)
            )
        return response_of(asked, as_ai(reply), self._chat.model_name)

    async def _aanswer(
        self, request: ClassifierRequest, config: RunnableConfig | None
    ) -> ClassifierResponse:
        asked, messages = prepare(request)
        logprobs = self.logprobs and not self._logprobs_refused
        try:
            reply = await self._chat.ainvoke(
                messages, config, **call_kwargs(asked, self.top_logprobs, logprobs)
            )
        except WandbInvalidRequestError as exc:
            self._refused(exc, logprobs)
            reply = await self._chat.ainvoke(
                messages, config, **call_kwargs(asked, self.top_logprobs)
            )
        return response_of(asked, as_ai(reply), self._chat.model_name)

    def _refused(self, error: WandbInvalidRequestError, logprobs: bool) -> None:
        """Re-raise ``error`` unless W&B refused ``logprobs``; then stop asking."""
        if not (logprobs and "logprob" in str(error).lower()):
            raise error
        self._logprobs_refused = True
