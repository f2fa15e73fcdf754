"""The W&B Inference model catalog: capabilities, limits, prices and lifecycle.

The data lives in one file, ``models.json`` beside this module, read lazily
(once, on first use); this module answers questions about it and never
touches the network. What W&B serves right now (``/v1/models``, with a disk
cache) is ``_live``'s concern; it marks the catalog through :func:`mark_live`.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from typing import Any, Final, Literal

from langchain_core.language_models import ModelProfile

from langchain_wandb_router.errors import (
    WandbModelNotFoundError,
    WandbModelRetiredError,
)

# No ``__all__`` here: the package (``catalog/__init__.py``) lists the public
# names once; other modules of the package import what they need by name.

ReasoningMode = Literal["none", "always", "default_on", "default_off"]
LifecycleStatus = Literal["active", "deprecated", "retired"]
FigureName = Literal["context_window", "max_output_tokens", "input", "output"]
"""The figures every active catalog model must state, as a number or unknown."""

FIGURES: Final[tuple[FigureName, ...]] = (
    "context_window",
    "max_output_tokens",
    "input",
    "output",
)


Unknown = Literal["unknown"]
"""The type of a figure no cited source gives: neither zero (free) nor unlimited.

A literal string rather than a class, so it reads the same in Python, in
``models.json``, in ``--json`` and in the table. The plain attributes
(``context_window``, ``pricing.input``, …) keep reading ``None`` for it, for
backward compatibility; :meth:`ModelInfo.figure` returns :data:`UNKNOWN`.
"""

UNKNOWN: Final[Unknown] = "unknown"

_PREFIXES = ("wandb/", "wandb:")
_LORA_SCHEME = "wandb-artifact:///"
# How alike an id must be to a catalog id to be named in "did you mean".
_CLOSE_ENOUGH = 0.9


def strip_prefix(model: str) -> str:
    """Drop a ``wandb/`` or ``wandb:`` prefix without validating the rest."""
    for prefix in _PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


_BARE_ID_RE = re.compile(r"^[^/\s\x00-\x1f\x7f]+/[^/\s\x00-\x1f\x7f]+$")


@functools.lru_cache(maxsize=1024)
def normalize_model_id(model: str) -> str:
    """Return the bare W&B model id for ``model``.

    Accepts ``"Qwen/Qwen3-…"``, ``"wandb/Qwen/Qwen3-…"`` and ``"wandb:Qwen/Qwen3-…"``
    and LoRA ids (``"wandb-artifact:///team/project/name:alias"``). The id is
    never lower-cased or split further: W&B ids are case-sensitive.

    Args:
        model: A model id, with or without a ``wandb/`` or ``wandb:`` prefix.

    Returns:
        The id W&B expects in the request body.

    Raises:
        TypeError: If ``model`` is not a string.
        ValueError: If the id is empty or malformed.
    """
    if not isinstance(model, str):
        msg = (
            "model must be a string such as "
            f"'wandb/Qwen/Qwen3-235B-A22B-Instruct-2507', got {type(model).__name__}"
        )
        raise TypeError(msg)
    bare = strip_prefix(model.strip())
    if bare.startswith(_LORA_SCHEME):
        rest = bare[len(_LORA_SCHEME) :]
        if not rest or any(ch.isspace() for ch in rest) or rest.count("/") < 2:
            msg = (
                f"Malformed LoRA model id {model!r}: expected "
                "'wandb-artifact:///<team>/<project>/<name>:<alias>'."
            )
            raise ValueError(msg)
        return bare
    # Cached: this runs several times per call (payload, catalog, pricing).
    if not _BARE_ID_RE.match(bare):
        msg = (
            f"Malformed W&B model id {model!r}: expected '<org>/<model>', optionally "
            "prefixed with 'wandb/' (e.g. 'wandb/Qwen/Qwen3-235B-A22B-Instruct-2507'). "
            "Run `wandb-router models` to list the catalog."
        )
        raise ValueError(msg)
    return bare


@dataclass(frozen=True)
class Pricing:
    """Prices in USD per one million tokens.

    ``None`` for ``input`` or ``output`` means unknown — never free: a model
    without both is unpriced, and a budget refuses it. ``None`` for
    ``cache_read`` means W&B publishes no separate cache-read price, so cached
    prompt tokens are billed at the input price.
    """

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None

    @property
    def known(self) -> bool:
        """Whether both the input and the output price are known."""
        return self.input is not None and self.output is not None


@dataclass(frozen=True)
class ModelInfo:
    """What the catalog knows about one W&B Inference model.

    Attributes:
        id: The bare W&B id, e.g. ``"Qwen/Qwen3-235B-A22B-Instruct-2507"``.
        name: A short display name.
        context_window: Maximum input tokens, if known.
        max_output_tokens: Maximum output tokens, if known.
        input_modalities: ``("text",)`` or ``("text", "image")``.
        tool_calling: Whether the model calls tools.
        structured_output: Whether ``response_format`` JSON schema is honoured.
        reasoning: ``none``, ``always``, ``default_on`` or ``default_off``.
        pricing: Prices per 1M tokens.
        deprecation_date: When W&B announced the model's end, if it did.
        retirement_date: When W&B stops (or stopped) serving the model.
        successor: The id W&B names as the replacement, if any.
        live: ``True``/``False`` once :func:`refresh_models` has seen
            ``/v1/models``; ``None`` when unknown.
    """

    id: str
    name: str = ""
    context_window: int | None = None
    max_output_tokens: int | None = None
    input_modalities: tuple[str, ...] = ("text",)
    tool_calling: bool = True
    structured_output: bool = True
    reasoning: ReasoningMode = "none"
    pricing: Pricing = field(default_factory=Pricing)
    deprecation_date: date | None = None
    retirement_date: date | None = None
    successor: str | None = None
    live: bool | None = None

    @property
    def vision(self) -> bool:
        """Whether the model accepts image input."""
        return "image" in self.input_modalities

    def status(self, today: date | None = None) -> LifecycleStatus:
        """Lifecycle status on ``today`` (default: the current date).

        Status is derived from the dates rather than stored, so a model whose
        retirement date has passed reads as retired without a catalog update.
        """
        today = today or date.today()
        if self.retirement_date is not None and self.retirement_date <= today:
            return "retired"
        if self.deprecation_date is not None and self.deprecation_date <= today:
            return "deprecated"
        if self.retirement_date is not None:
            return "deprecated"
        return "active"

    def is_retired(self, today: date | None = None) -> bool:
        """Whether W&B no longer serves this model."""
        if self.retirement_date is None:  # most models; spares date.today()
            return False
        return self.status(today) == "retired"

    def retirement_message(self) -> str:
        """A sentence telling the user what happened and what to use instead."""
        when = self.retirement_date.isoformat() if self.retirement_date else "?"
        if self.successor:
            advice = f"use 'wandb/{self.successor}' instead"
        else:
            advice = (
                "W&B named no successor; pick an active model from "
                "`wandb-router models`"
            )
        return f"W&B model '{self.id}' was retired on {when}; {advice}."

    def figure(self, name: FigureName) -> int | float | Unknown:
        """One of the :data:`FIGURES`, or :data:`UNKNOWN` when no source gives it.

        Args:
            name: ``context_window``, ``max_output_tokens``, ``input`` or
                ``output`` (prices in USD per 1M tokens).
        """
        value: int | float | None = {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "input": self.pricing.input,
            "output": self.pricing.output,
        }[name]
        return UNKNOWN if value is None else value

    def unknown_figures(self) -> tuple[FigureName, ...]:
        """The :data:`FIGURES` no source gives for this model, in order."""
        return tuple(f for f in FIGURES if self.figure(f) == UNKNOWN)

    def to_profile(self) -> ModelProfile:
        """Return this model's LangChain ``ModelProfile``."""
        profile = ModelProfile(
            name=self.name or self.id,
            status=self.status(),
            open_weights=True,
            text_inputs=True,
            image_inputs=self.vision,
            image_url_inputs=self.vision,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            image_tool_message=False,
            pdf_tool_message=False,
            text_outputs=True,
            image_outputs=False,
            audio_outputs=False,
            video_outputs=False,
            reasoning_output=self.reasoning != "none",
            tool_calling=self.tool_calling,
            tool_choice=self.tool_calling,
            tool_call_streaming=self.tool_calling,
            structured_output=self.structured_output,
            temperature=True,
        )
        if self.context_window is not None:
            profile["max_input_tokens"] = self.context_window
        if self.max_output_tokens is not None:
            profile["max_output_tokens"] = self.max_output_tokens
        return profile

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view with stable keys (used by the CLI's ``--json``).

        An unknown figure reads ``"unknown"`` (never ``null``, which a reader
        could take for free or unlimited) and is also named in
        ``unknown_figures``; the catalog's date and source come along, so a
        single entry says where its numbers came from.
        """
        return {
            "id": self.id,
            "model": f"wandb/{self.id}",
            "name": self.name,
            "context_window": self.figure("context_window"),
            "max_output_tokens": self.figure("max_output_tokens"),
            "input_modalities": list(self.input_modalities),
            "tool_calling": self.tool_calling,
            "structured_output": self.structured_output,
            "vision": self.vision,
            "reasoning": self.reasoning,
            "input_cost_per_million": self.figure("input"),
            "output_cost_per_million": self.figure("output"),
            "cache_read_cost_per_million": self.pricing.cache_read,
            "unknown_figures": list(self.unknown_figures()),
            "status": self.status(),
            "deprecation_date": _iso(self.deprecation_date),
            "retirement_date": _iso(self.retirement_date),
            "successor": self.successor,
            "live": self.live,
            "catalog_as_of": catalog_date(),
            "catalog_source": catalog_source(),
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _number(value: Any) -> Any:
    """A figure from ``models.json``: ``"unknown"`` (or a missing one) is ``None``.

    The file says "unknown" explicitly (a test keeps ``null`` out of the four
    figures of active models); the attributes keep reading ``None`` for it.
    """
    return None if value is None or value == UNKNOWN else value


def _from_record(rec: dict[str, Any]) -> ModelInfo:
    price = rec.get("price") or {}
    life = rec.get("lifecycle") or {}
    return ModelInfo(
        id=rec["id"],
        name=rec.get("name", ""),
        context_window=_number(rec.get("context_window")),
        max_output_tokens=_number(rec.get("max_output_tokens")),
        input_modalities=tuple(rec.get("input_modalities", ["text"])),
        tool_calling=bool(rec.get("tool_calling", True)),
        structured_output=bool(rec.get("structured_output", True)),
        reasoning=rec.get("reasoning", "none"),
        pricing=Pricing(
            _number(price.get("input")),
            _number(price.get("output")),
            _number(price.get("cache_read")),
        ),
        deprecation_date=_parse_date(life.get("deprecation_date")),
        retirement_date=_parse_date(life.get("retirement_date")),
        successor=life.get("successor"),
    )


class _Catalog:
    """The loaded catalog; one per process, filled on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] | None = None
        self._as_of: str = ""
        self._source: str = ""

    def _load(self) -> dict[str, ModelInfo]:
        models = self._models
        if models is not None:
            return models
        with self._lock:
            if self._models is None:
                raw = (
                    resources.files("langchain_wandb_router.catalog")
                    .joinpath("models.json")
                    .read_text(encoding="utf-8")
                )
                doc = json.loads(raw)
                self._as_of = doc.get("as_of", "")
                self._source = doc.get("source", "")
                self._models = {r["id"]: _from_record(r) for r in doc["models"]}
            return self._models

    def get(self, model_id: str) -> ModelInfo | None:
        return self._load().get(model_id)

    def all(self) -> list[ModelInfo]:
        return list(self._load().values())

    def put(self, info: ModelInfo) -> None:
        models = self._load()
        with self._lock:
            models[info.id] = info

    def as_of(self) -> str:
        self._load()
        return self._as_of

    def source(self) -> str:
        self._load()
        return self._source


_CATALOG = _Catalog()


def get_model_info(model: str) -> ModelInfo | None:
    """Look a model up in the catalog.

    Args:
        model: A model id; ``wandb/`` and ``wandb:`` prefixes are accepted.

    Returns:
        The model's :class:`ModelInfo`, or ``None`` for ids the catalog does
        not know (new models, LoRA artifacts) — those still work, without a
        profile or prices.
    """
    return _CATALOG.get(normalize_model_id(model))


def list_models(*, include_retired: bool = False) -> list[ModelInfo]:
    """Return the catalog's models, active and deprecated first by default.

    Args:
        include_retired: Also list models W&B no longer serves.
    """
    today = date.today()
    return [m for m in _CATALOG.all() if include_retired or not m.is_retired(today)]


def register_model(info: ModelInfo) -> None:
    """Add or replace a catalog entry for this process.

    Useful for LoRA artifacts and models newer than the shipped catalog, so that
    routing can see their capabilities and cost tracking their prices.
    """
    _CATALOG.put(replace(info, id=normalize_model_id(info.id)))


def suggest_model_id(model: str) -> str | None:
    """A catalog id the caller probably meant by ``model``, if any.

    The id that matches ignoring case (W&B ids are case-sensitive, so this is
    a typo), else the closest id within a small edit distance. ``None`` for
    catalog ids and for ids unlike any (new models, LoRA artifacts).
    """
    wanted = normalize_model_id(model)
    if _CATALOG.get(wanted) is not None:
        return None
    ids = [info.id for info in _CATALOG.all()]
    folded = {known.casefold(): known for known in ids}
    if wanted.casefold() in folded:
        return folded[wanted.casefold()]
    close = difflib.get_close_matches(wanted, ids, n=1, cutoff=_CLOSE_ENOUGH)
    return close[0] if close else None


def wrong_case_error(model: str) -> WandbModelNotFoundError | None:
    """The error for an id that is a catalog id in the wrong case, else ``None``.

    Known before any request: W&B would answer 404.
    """
    wanted = normalize_model_id(model)
    meant = suggest_model_id(wanted)
    if meant is None or meant.casefold() != wanted.casefold():
        return None
    return WandbModelNotFoundError(
        f"W&B model ids are case-sensitive: {wanted!r} is not served; did you "
        f"mean 'wandb/{meant}'?",
        model=wanted,
    )


def retired_error(info: ModelInfo) -> WandbModelRetiredError:
    """The error for a call to a retired model, raised before any request.

    The one builder of :class:`~langchain_wandb_router.errors.WandbModelRetiredError`
    (ChatWandb raises it at construction and when a payload names the model).
    """
    return WandbModelRetiredError(
        info.retirement_message(), model=info.id, successor=info.successor
    )


def catalog_date() -> str:
    """The date the shipped catalog (and its prices) was compiled."""
    return _CATALOG.as_of()


def catalog_source() -> str:
    """Where the shipped catalog's figures came from (per figure: ``data/``)."""
    return _CATALOG.source()


def mark_live(live_ids: set[str] | None) -> None:
    """Record which catalog models ``/v1/models`` lists (``None``: unknown)."""
    for info in _CATALOG.all():
        flag = None if live_ids is None else info.id in live_ids
        _CATALOG.put(replace(info, live=flag))
