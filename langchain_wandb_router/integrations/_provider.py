"""``wandb:`` model strings for langchain's ``init_chat_model`` (explicit opt-in).

langchain resolves ``"provider:model"`` strings, and ``model_provider=`` names,
through one table in ``langchain.chat_models.base`` (``_BUILTIN_PROVIDERS``, since
langchain 1.3). ``create_agent(model="…")``, ``ModelFallbackMiddleware("…")``,
the summarization/tool-selection middleware and configurable models all go
through ``init_chat_model``, so one entry in that table serves them all.

The table is closed (langchain offers no public registration), so this module
adds the entry only when :func:`register_provider` is called, and first checks
that the installed langchain is one of the releases the provider tests ran on
(:data:`LANGCHAIN_PROVEN`) and that the table and the functions reading it are
the shape it expects. Importing this module, or the package, changes nothing.
"""

from __future__ import annotations

import threading
import warnings
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.chat._fast_messages import dotted, parse_release
from langchain_wandb_router.errors import ProviderRegistrationError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "LANGCHAIN_PROVEN",
    "PROVIDER",
    "ProviderRegistrationError",
    "register_provider",
]

PROVIDER = "wandb"
"""The provider key: ``"wandb:<model id>"`` or ``model_provider="wandb"``."""

# Where langchain finds the class: imported by langchain on first use, so
# registering stays cheap (no langchain-openai import until a model is built).
_MODULE = "langchain_wandb_router.chat_model"
_CLASS = "ChatWandb"

_TABLE = "_BUILTIN_PROVIDERS"
# The functions that must read the table for an entry in it to take effect.
_READERS = ("_parse_model", "_get_chat_model_creator")
_HELPER = "_init_chat_model_helper"
_PROBE = ("wandb:probe-org/probe-model:tag", ("probe-org/probe-model:tag", PROVIDER))

LANGCHAIN_PROVEN: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 3, 0), (1, 5, 2))
"""The langchain releases ``tests/integration_tests/test_provider.py`` passed on.

From the ``agents`` extra's floor (the first release with the table) to the
newest release tested, inclusive. On any other release (pre-releases included)
:func:`register_provider` refuses, changing nothing. Raise the upper bound only
after those tests pass on the new release.
"""

_lock = threading.Lock()


def _build_chat_wandb(cls: type[BaseChatModel], **kwargs: Any) -> BaseChatModel:
    """Instantiate ``cls`` (ChatWandb) the way langchain's creators are called.

    langchain calls ``creator(cls=<class>, model=<id>, **init_chat_model kwargs)``.
    """
    return cls(**kwargs)


def _langchain_version() -> str:
    try:
        return metadata.version("langchain")
    except metadata.PackageNotFoundError:
        return "unknown"


def _tested_range() -> str:
    low, high = LANGCHAIN_PROVEN
    return f"langchain {dotted(low)} to {dotted(high)}"


def _shape_error(reason: str) -> ProviderRegistrationError:
    msg = (
        f"Cannot register the 'wandb' provider with langchain "
        f"{_langchain_version()}: {reason}. register_provider() edits a private "
        f"table of langchain's and was tested with {_tested_range()}; nothing was "
        "changed. Use ChatWandb(model='Qwen/...') directly: create_agent and the "
        "agent middleware accept model objects as well as strings."
    )
    return ProviderRegistrationError(msg)


def _check_version() -> None:
    """Refuse a langchain outside :data:`LANGCHAIN_PROVEN` (or of unknown version).

    Raises:
        ProviderRegistrationError: The installed release was never tested.
    """
    release = parse_release(_langchain_version())
    low, high = LANGCHAIN_PROVEN
    if release is None or not low <= release <= high:
        raise _shape_error("that release is outside the ones it was tested with")


def _import_langchain_base() -> ModuleType:
    try:
        from langchain.chat_models import base
    except ImportError as exc:
        msg = (
            "register_provider() needs langchain: "
            'pip install "langchain-wandb-router[agents]"'
        )
        raise ImportError(msg) from exc
    return base


def _code_names(func: object) -> frozenset[str]:
    """Global names a function's code reads (through lru_cache-style wrappers)."""
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    code = getattr(func, "__code__", None)
    return frozenset(code.co_names) if code is not None else frozenset()


def _checked_table(base: ModuleType) -> dict[str, Any]:
    """Return langchain's provider table after checking everything we rely on.

    Raises:
        ProviderRegistrationError: If anything is missing or differently shaped.
    """
    table = getattr(base, _TABLE, None)
    if not isinstance(table, dict):
        raise _shape_error(f"langchain.chat_models.base has no {_TABLE} dict")
    for key, entry in table.items():
        if not (
            isinstance(key, str)
            and isinstance(entry, tuple)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and callable(entry[2])
        ):
            raise _shape_error(
                f"{_TABLE}[{key!r}] is not a (module, class name, creator) tuple"
            )
    for name in _READERS:
        if _TABLE not in _code_names(getattr(base, name, None)):
            raise _shape_error(f"{name}() no longer reads {_TABLE}")
    if not set(_READERS) <= _code_names(getattr(base, _HELPER, None)):
        raise _shape_error(f"{_HELPER}() no longer resolves providers through it")
    return table


def _probe(base: ModuleType) -> bool:
    """Whether langchain now splits a ``wandb:`` string to our provider.

    The probe id carries a ``/`` and a ``:`` like real W&B and LoRA ids do, so
    this also checks that only the first ``:`` is taken as the separator.
    """
    text, expected = _PROBE
    try:
        parsed = base._parse_model(text, None)
    except Exception:  # any failure means the hook does not work
        return False
    return bool(parsed == expected)


def register_provider() -> None:
    """Make langchain build ``ChatWandb`` for ``wandb:`` model strings.

    After one call, in this process:

    .. code-block:: python

        from langchain.chat_models import init_chat_model
        from langchain.agents import create_agent

        init_chat_model("wandb:Qwen/Qwen3-235B-A22B-Instruct-2507", temperature=0)
        init_chat_model("Qwen/Qwen3-235B-A22B-Instruct-2507", model_provider="wandb")
        create_agent(model="wandb:Qwen/Qwen3-235B-A22B-Instruct-2507", tools=[...])

    all return or use a ``ChatWandb`` for the bare W&B id; other keyword
    arguments go to ``ChatWandb`` (``api_key``, ``base_url``, ``project``...).
    Only the ``wandb:`` prefix is claimed: strings for other providers, and
    ``wandb/…`` strings (which langchain does not parse), behave as before.

    Calling it again is harmless, and it is safe from several threads. Nothing
    happens at import time: this call is the opt-in.

    Raises:
        ImportError: langchain is not installed (the ``agents`` extra).
        ProviderRegistrationError: The installed langchain is not one of the
            releases this was tested with (:data:`LANGCHAIN_PROVEN`), or its
            provider registry is not the shape this function hooks; nothing
            was changed. Use ``ChatWandb(...)`` directly instead.
    """
    base = _import_langchain_base()
    _check_version()
    entry = (_MODULE, _CLASS, _build_chat_wandb)
    with _lock:
        table = _checked_table(base)
        previous = table.get(PROVIDER)
        if previous == entry:
            return
        if previous is not None and tuple(previous[:2]) != (_MODULE, _CLASS):
            warnings.warn(
                f"langchain already maps provider 'wandb' to "
                f"{previous[0]}.{previous[1]}; register_provider() replaces it "
                "with langchain_wandb_router.ChatWandb for this process.",
                UserWarning,
                stacklevel=2,
            )
        table[PROVIDER] = entry
        _clear_creator_cache(base)
        if not _probe(base):
            _restore(table, previous)
            _clear_creator_cache(base)
            raise _shape_error("'wandb:<id>' strings still do not resolve to it")


def _restore(table: dict[str, Any], previous: Any) -> None:
    if previous is None:
        table.pop(PROVIDER, None)
    else:
        table[PROVIDER] = previous


def _clear_creator_cache(base: ModuleType) -> None:
    """Forget the creators langchain cached, so a changed entry takes effect.

    langchain caches the creator per provider (``functools.lru_cache``); an
    entry it already resolved would otherwise outlive its replacement.
    """
    cache_clear = getattr(base._get_chat_model_creator, "cache_clear", None)
    if callable(cache_clear):
        cache_clear()
