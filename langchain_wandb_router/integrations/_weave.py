"""Put the catalog's W&B Inference prices into a Weave project.

Weave prices a traced call by looking its usage up by model id (the key of
``summary["usage"]``) in a price table; a project's own prices, added with
``WeaveClient.add_cost``, win over Weave's built-in ones for calls that start on
or after their ``effective_date``. For W&B Inference the key is the bare W&B id:
Weave's LangChain tracer uses ``ls_model_name`` (``ChatWandb`` reports the bare
id there) and its OpenAI integration uses the response's ``model``.

Nothing here imports weave: the client is duck-typed, so this module loads with
or without weave installed.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from langchain_wandb_router.catalog._models import (
    ModelInfo,
    get_model_info,
    list_models,
    normalize_model_id,
)
from langchain_wandb_router.catalog._pricing import PER_MILLION, cache_read_price

__all__ = ["SupportsAddCost", "register_weave_costs"]

logger = logging.getLogger(__name__)

_CACHE_READ = "cache_read_input_token_cost"
_CACHE_WRITE = "cache_creation_input_token_cost"


class SupportsAddCost(Protocol):
    """The part of ``weave.WeaveClient`` that :func:`register_weave_costs` uses.

    Weave releases that price cached input tokens also accept
    ``cache_read_input_token_cost`` and ``cache_creation_input_token_cost``;
    those are passed only when the client's ``add_cost`` takes them.
    """

    def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        effective_date: datetime | None = ...,
        prompt_token_cost_unit: str | None = ...,
        completion_token_cost_unit: str | None = ...,
        provider_id: str | None = ...,
    ) -> Any:
        """Add one model's per-token prices to the client's project."""
        ...


def _per_token(per_million: float) -> float:
    """USD per token, as the float nearest the decimal value (0.1 → 1e-07).

    Plain float division gives 1.0000000000000001e-07 for $0.10/1M; going
    through the price's shortest decimal form stores what W&B publishes.
    """
    # The catalog prices a million tokens; Weave prices one.
    return float(Decimal(repr(per_million)) / PER_MILLION)


@dataclass(frozen=True)
class _Price:
    """One model's prices per token, as Weave takes them."""

    llm_id: str
    prompt: float
    completion: float
    cache_read: float


def _price_of(info: ModelInfo) -> _Price | None:
    pricing = info.pricing
    cache_read = cache_read_price(pricing)  # the rule ChatWandb's cost_usd uses
    if pricing.input is None or pricing.output is None or cache_read is None:
        return None
    return _Price(
        llm_id=info.id,
        prompt=_per_token(pricing.input),
        completion=_per_token(pricing.output),
        cache_read=_per_token(cache_read),
    )


def _accepted_keywords(add_cost: Any) -> frozenset[str]:
    """Optional keyword names this ``add_cost`` accepts (all, for ``**kwargs``)."""
    try:
        params = inspect.signature(add_cost).parameters.values()
    except (TypeError, ValueError):  # no introspectable signature: stay minimal
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return frozenset({_CACHE_READ, _CACHE_WRITE})
    return frozenset(p.name for p in params)


def _select(models: Iterable[str] | None) -> tuple[list[_Price], list[str]]:
    """Priced models to register, and the ids skipped for want of a price."""
    if models is None:
        infos: list[ModelInfo | None] = list(list_models(include_retired=True))
        requested = [info.id for info in infos if info is not None]
    else:
        if isinstance(models, str):
            msg = "models must be a list of model ids, not a single string."
            raise TypeError(msg)
        requested = list(dict.fromkeys(normalize_model_id(m) for m in models))
        infos = [get_model_info(model_id) for model_id in requested]
    priced: list[_Price] = []
    skipped: list[str] = []
    for model_id, info in zip(requested, infos, strict=True):
        price = _price_of(info) if info is not None else None
        if price is None:
            skipped.append(model_id)
        else:
            priced.append(price)
    return priced, skipped


def _report_skipped(skipped: list[str], *, explicit: bool) -> None:
    if not skipped:
        return
    text = (
        f"No Weave price registered for {len(skipped)} W&B model(s) the catalog "
        f"has no input/output price for: {', '.join(skipped)}."
    )
    if explicit:
        # The caller named these models, so this is worth their attention.
        warnings.warn(
            text + " Add prices with langchain_wandb_router.register_model() first.",
            UserWarning,
            stacklevel=3,
        )
    else:
        logger.info(text)


def register_weave_costs(
    client: SupportsAddCost,
    models: Iterable[str] | None = None,
    *,
    provider_id: str = "wandb",
    effective_date: datetime | None = None,
) -> list[str]:
    """Register the catalog's W&B Inference prices with a Weave project.

    Weave's built-in prices for W&B Inference models are not W&B's; this adds
    the catalog's prices (per token: input, output, and cache-read where the
    installed Weave prices cached tokens) as project prices, which Weave uses
    instead of its own for every traced call that starts on or after
    ``effective_date``.

    .. code-block:: python

        import weave
        from langchain_wandb_router import register_weave_costs

        client = weave.init("my-team/my-project")
        register_weave_costs(client)

    Each call adds one price row per model to the project (the newest effective
    row wins), so run it once per project, and again when prices change, rather
    than on every start-up.

    Args:
        client: A ``weave.WeaveClient`` (what ``weave.init`` returns) or any
            object with the same ``add_cost`` method.
        models: W&B model ids (``wandb/`` and ``wandb:`` prefixes accepted) to
            register; default: every priced model in the catalog, retired ones
            included so older traces can be priced too.
        provider_id: The provider Weave records with the price.
        effective_date: When the prices start to apply; default: now (Weave's
            default). Pass an earlier date to re-price calls already traced.

    Returns:
        The model ids (Weave's ``llm_id``) that were given a price, in order.
        Models without a catalog price are skipped: named ids that are skipped
        raise a ``UserWarning``; with the whole catalog they are logged.

    Raises:
        TypeError: ``models`` is a single string rather than a list of ids.
        ValueError: A model id in ``models`` is malformed.
    """
    priced, skipped = _select(models)
    accepted = _accepted_keywords(client.add_cost)
    extra: dict[str, Any] = {"provider_id": provider_id}
    if effective_date is not None:
        extra["effective_date"] = effective_date
    registered: list[str] = []
    for price in priced:
        kwargs = dict(extra)
        if _CACHE_READ in accepted:
            kwargs[_CACHE_READ] = price.cache_read
        if _CACHE_WRITE in accepted:
            # W&B bills no separate cache writes: if any are reported, they are
            # ordinary input tokens (Weave's default for this price is 0).
            kwargs[_CACHE_WRITE] = price.prompt
        client.add_cost(price.llm_id, price.prompt, price.completion, **kwargs)
        registered.append(price.llm_id)
    if priced and _CACHE_READ not in accepted:
        logger.info(
            "This Weave client's add_cost takes no cache-read price; cached input "
            "tokens will be priced as Weave decides (upgrade weave to set them)."
        )
    _report_skipped(skipped, explicit=models is not None)
    return registered
