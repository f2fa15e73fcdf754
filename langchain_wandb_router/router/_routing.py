"""Routing pieces shared by the sync and async paths of WandbRouter.

Everything here is plain data and decisions: what a route is, what a request
needs, which routes can serve it, and how a failed attempt is described. No I/O
happens here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.language_models import BaseChatModel, ModelProfile
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from langchain_wandb_router.catalog._models import (
    ModelInfo,
    get_model_info,
    normalize_model_id,
    wrong_case_error,
)
from langchain_wandb_router.chat._tokens import estimate_message_tokens, has_image_input
from langchain_wandb_router.router._scope import CURRENT_AGENT_STATE

logger = logging.getLogger("langchain_wandb_router")


FORCE_KEY = "wandb_model"


@dataclass(frozen=True)
class Route:
    """One candidate model, with per-route settings.

    Attributes:
        model: A W&B id (``"wandb/org/model"``) or any LangChain chat model
            (e.g. a non-W&B fallback).
        max_retries: Router retries on this route before falling back
            (default: the router's ``max_retries``).
        headers: Extra headers for this route's requests.
        model_settings: ChatWandb arguments for this route (``temperature``,
            ``max_tokens``, ``enable_thinking``…), over the router's.
        weight: This route's share under ``strategy="weighted"`` (relative
            to the other routes' weights).
        reason: Why a selector chose it (shown in ``routing["reason"]``).
    """

    model: str | BaseChatModel
    max_retries: int | None = None
    headers: Mapping[str, str] | None = None
    model_settings: Mapping[str, Any] | None = None
    weight: float = 1.0
    reason: str | None = field(default=None, compare=False)
    """Why a selector chose this route (shown in ``routing["reason"]``)."""

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            object.__setattr__(self, "model", normalize_model_id(self.model))
            if get_model_info(self.model) is None and (
                wrong := wrong_case_error(self.model)
            ):
                raise wrong
        elif not isinstance(self.model, BaseChatModel):
            msg = (
                "Route.model must be a W&B model id or a LangChain chat model, got "
                f"{type(self.model).__name__}."
            )
            raise TypeError(msg)
        if self.max_retries is not None and self.max_retries < 0:
            msg = "Route.max_retries must be >= 0."
            raise ValueError(msg)
        if not (isinstance(self.weight, int | float) and self.weight > 0):
            msg = f"Route.weight must be a number > 0, got {self.weight!r}."
            raise ValueError(msg)
        # Computed once: the label is read several times on every call.
        if isinstance(self.model, str):
            label = self.model
        else:
            label = str(
                getattr(self.model, "model_name", None) or type(self.model).__name__
            )
        object.__setattr__(self, "label", label)

    label: str = field(init=False, repr=False, compare=False)
    """The model id, or the chat model's name for foreign models."""

    def as_spec(self) -> str | dict[str, Any] | BaseChatModel:
        """The route as it can be written down: a model id, or a dict of its settings.

        ``as_routes`` reads both back; a chat model route is the model itself.
        """
        if not isinstance(self.model, str):
            return self.model
        spec: dict[str, Any] = {"model": self.model}
        if self.max_retries is not None:
            spec["max_retries"] = self.max_retries
        if self.headers:
            spec["headers"] = dict(self.headers)
        if self.model_settings:
            spec["model_settings"] = dict(self.model_settings)
        if self.weight != 1.0:
            spec["weight"] = self.weight
        return self.model if len(spec) == 1 else spec


RouteLike = str | Route | BaseChatModel | Mapping[str, Any]


def as_routes(spec: RouteLike | Sequence[RouteLike]) -> list[Route]:
    """Normalize what a user or selector gave into a list of routes."""
    if isinstance(spec, str | Route | BaseChatModel | Mapping):
        items: Sequence[RouteLike] = [spec]
    elif isinstance(spec, Sequence):
        items = spec
    else:
        msg = (
            "models must be a model id, a Route, a chat model, a list of those, or "
            f"a function returning one; got {type(spec).__name__}."
        )
        raise TypeError(msg)
    routes = [_route(item) for item in items]
    if not routes:
        msg = (
            "models is empty: give at least one model, e.g. "
            "'wandb/Qwen/Qwen3-235B-A22B-Instruct-2507'."
        )
        raise ValueError(msg)
    return routes


def _route(item: RouteLike) -> Route:
    if isinstance(item, Route):
        return item
    if not isinstance(item, Mapping):
        return Route(item)
    unknown = set(item) - {
        "model",
        "max_retries",
        "headers",
        "model_settings",
        "weight",
    }
    if unknown or "model" not in item:
        msg = (
            "A route given as a dict needs 'model' and may have 'max_retries', "
            f"'headers', 'model_settings' and 'weight'; got keys {sorted(item)}."
        )
        raise TypeError(msg)
    return Route(**item)


@dataclass
class RoutingContext:
    """What a model selector sees for one call.

    Attributes:
        messages: The conversation about to be sent (do not mutate).
        config: The call's RunnableConfig (``configurable``, ``metadata``, ``tags``).
        runtime_context: The LangGraph runtime context when running in a graph
            (e.g. ``create_agent(..., context_schema=...)``), else ``None``.
        state: The agent state when called through WandbRoutingMiddleware.
        tools: Tools bound to the router, in OpenAI format.
        needs_tools: Whether the request carries tools.
        needs_images: Whether any message has an image.
        needs_structured_output: Whether ``response_format`` was asked for.
        estimated_input_tokens: A rough count of the input's tokens.
    """

    messages: list[BaseMessage]
    config: RunnableConfig = field(default_factory=lambda: RunnableConfig())
    runtime_context: Any = None
    state: Any = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    needs_tools: bool = False
    needs_images: bool = False
    needs_structured_output: bool = False
    estimated_input_tokens: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        """Look ``key`` up in the LangGraph context, configurable, then metadata."""
        ctx = self.runtime_context
        if ctx is not None:
            if isinstance(ctx, Mapping):
                if key in ctx:
                    return ctx[key]
            elif hasattr(ctx, key):
                return getattr(ctx, key)
        for section in ("configurable", "metadata"):
            values: Mapping[str, Any] = self.config.get(section) or {}  # type: ignore[assignment]
            if key in values:
                return values[key]
        return default


def common_profile(routes: Sequence[Route]) -> ModelProfile | None:
    """The intersection of the routes' profiles: what every one of them can do.

    Booleans are and-ed, limits take the minimum, other disagreeing keys are
    dropped; a route without a known profile makes the whole answer unknown.
    """
    profiles: list[Mapping[str, Any]] = []
    for route in routes:
        prof: Mapping[str, Any] | None
        if isinstance(route.model, BaseChatModel):
            prof = route.model.profile
        else:
            info = get_model_info(route.model)
            prof = info.to_profile() if info else None
        if prof is None:
            return None
        profiles.append(prof)
    merged: dict[str, Any] = dict(profiles[0])
    for prof in profiles[1:]:
        for key in list(merged):
            mine, theirs = merged[key], prof.get(key)
            if isinstance(mine, bool):
                merged[key] = mine and bool(theirs)
            elif isinstance(mine, int) and isinstance(theirs, int):
                merged[key] = min(mine, theirs)
            elif mine != theirs:
                del merged[key]
    merged["name"] = " | ".join(r.label for r in routes)
    return ModelProfile(**merged)  # type: ignore[typeddict-item,no-any-return]


def _langgraph_context() -> Any:
    """The LangGraph runtime context of the graph run we are in, if any."""
    try:
        from langgraph.runtime import get_runtime
    except ImportError:
        return None
    try:
        runtime = get_runtime()
    except (RuntimeError, KeyError):
        return None
    return getattr(runtime, "context", None)


def build_context(
    messages: list[BaseMessage],
    config: RunnableConfig,
    kwargs: Mapping[str, Any],
    *,
    for_selector: bool = True,
) -> RoutingContext:
    """Describe a call for the selector and the capability filter.

    The LangGraph runtime and agent state are looked up only when a selector
    will read them: finding the runtime costs more than the rest together.
    """
    tools = list(kwargs.get("tools") or [])
    return RoutingContext(
        messages=messages,
        config=config,
        runtime_context=_langgraph_context() if for_selector else None,
        state=CURRENT_AGENT_STATE.get() if for_selector else None,
        tools=tools,
        needs_tools=bool(tools),
        needs_images=has_image_input(messages),
        needs_structured_output=kwargs.get("response_format") is not None,
        estimated_input_tokens=estimate_message_tokens(messages),
    )


def forced_model(ctx: RoutingContext, kwargs: Mapping[str, Any]) -> str | None:
    """A model forced for this call by ``model=`` or ``configurable.wandb_model``."""
    forced = kwargs.get("model") or (ctx.config.get("configurable") or {}).get(
        FORCE_KEY
    )
    return str(forced) if forced else None


@dataclass(slots=True)
class Candidate:
    """A route that passed the capability filter, with why it was chosen.

    Made for every route of every call, so a plain slotted record (a frozen
    one costs a guarded ``__setattr__`` per field); nothing changes it.
    """

    route: Route
    reason: str
    label: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self.label = self.route.label


def _capabilities(
    info: ModelInfo | None, profile: Mapping[str, Any] | None
) -> tuple[bool, bool, bool, int | None]:
    """(tools, vision, structured output, context window) from catalog or profile."""
    if info is not None:
        return (
            info.tool_calling,
            info.vision,
            info.structured_output,
            info.context_window,
        )
    p = profile or {}
    return (
        bool(p.get("tool_calling", True)),
        bool(p.get("image_inputs", True)),
        bool(p.get("structured_output", True)),
        p.get("max_input_tokens"),
    )


def exclusion_reason(
    info: ModelInfo | None,
    ctx: RoutingContext,
    profile: Mapping[str, Any] | None = None,
) -> str | None:
    """Why a model cannot serve ``ctx``, or ``None`` if it can."""
    if info is None and profile is None:
        return None  # unknown: let W&B decide
    tools, vision, structured, window = _capabilities(info, profile)
    if ctx.needs_tools and not tools:
        return "does not call tools"
    if ctx.needs_images and not vision:
        return "does not accept images"
    if ctx.needs_structured_output and not structured:
        return "does not support structured output"
    if window is not None and ctx.estimated_input_tokens > window:
        return (
            f"input of ~{ctx.estimated_input_tokens} tokens exceeds its "
            f"{window}-token context window"
        )
    return None


_warned_retired: set[str] = set()


def filter_routes(
    routes: list[Route], ctx: RoutingContext, *, upgrade_retired: bool, reason: str
) -> tuple[list[Candidate], dict[str, str]]:
    """Split routes into usable candidates and excluded ones with reasons."""
    candidates: list[Candidate] = []
    excluded: dict[str, str] = {}
    for route in routes:
        why = (route.reason or reason) if not candidates else "fallback"
        if not isinstance(route.model, str):  # a LangChain model: its profile
            problem = exclusion_reason(None, ctx, route.model.profile)
            if problem:
                excluded[route.label] = problem
            else:
                candidates.append(Candidate(route, why))
            continue
        info = get_model_info(route.model)
        if info is not None and info.is_retired():
            if upgrade_retired and info.successor:
                why = f"upgraded from retired {route.label}"
                route = replace(route, model=info.successor)
                info = get_model_info(info.successor)
            else:
                excluded[route.label] = info.retirement_message()
                if route.label not in _warned_retired:
                    _warned_retired.add(route.label)
                    logger.warning("Skipping route: %s", info.retirement_message())
                continue
        problem = exclusion_reason(info, ctx)
        if problem:
            excluded[route.label] = problem
        else:
            candidates.append(Candidate(route, why))
    return candidates, excluded


def describe(error: BaseException) -> str:
    """A one-line description of an attempt's failure (never the key)."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:300]
