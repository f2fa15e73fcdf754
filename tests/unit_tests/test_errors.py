"""Every exception class lives in errors.py, and each error has one builder."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import httpx
import pytest

import langchain_wandb_router
from langchain_wandb_router import errors
from langchain_wandb_router.errors import (
    StreamInterruptedError,
    WandbAPIError,
    stream_interrupted,
)

PACKAGE = Path(langchain_wandb_router.__file__).parent
ROOT = "langchain_wandb_router"

# Defined in a file another engineer owns; to be moved here.
NOT_YET_MOVED: set[str] = set()


def _module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def test_every_exception_class_is_defined_in_errors() -> None:
    pytest.importorskip("redis")
    pytest.importorskip("langchain.agents")
    elsewhere = set()
    for name in _module_names():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != errors.__name__
                and attr not in NOT_YET_MOVED
            ):
                elsewhere.add(f"{name}.{attr}")
    assert sorted(elsewhere) == []


def test_every_error_class_is_listed_in_errors_all_and_its_docstring() -> None:
    doc = errors.__doc__ or ""
    for attr, value in vars(errors).items():
        if inspect.isclass(value) and value.__module__ == errors.__name__:
            assert attr in errors.__all__, attr
            assert attr in doc, attr


def test_moved_errors_stay_importable_where_they_were() -> None:
    from langchain_wandb_router.state import (
        SlotTimeoutError,
        StateUnavailableError,
        _interface,
    )
    from langchain_wandb_router.transport._config import MissingAPIKeyError

    assert SlotTimeoutError is errors.SlotTimeoutError
    assert StateUnavailableError is errors.StateUnavailableError
    assert _interface.SlotTimeoutError is errors.SlotTimeoutError
    assert _interface.StateUnavailableError is errors.StateUnavailableError
    assert MissingAPIKeyError is errors.MissingAPIKeyError
    assert langchain_wandb_router.SlotTimeoutError is errors.SlotTimeoutError
    assert langchain_wandb_router.StateUnavailableError is errors.StateUnavailableError


def test_stream_interrupted_names_our_errors_but_not_a_library_s_text() -> None:
    ours = stream_interrupted(WandbAPIError("W&B said no"), "m/x")
    assert isinstance(ours, StreamInterruptedError)
    assert "WandbAPIError: W&B said no" in str(ours)
    assert (ours.model, ours.partial_text) == ("m/x", "")
    assert not ours.is_retryable

    theirs = stream_interrupted(httpx.ReadError("http://secret.example/"), "m/x")
    assert "(ReadError)" in str(theirs)
    assert "secret.example" not in str(theirs)


def test_stream_interrupted_takes_a_cause_a_hint_and_the_partial_text() -> None:
    error = stream_interrupted(
        httpx.ReadTimeout("t"), "m/x", hint="raise deadline=", partial_text="Hel"
    )
    assert "(ReadTimeout: raise deadline=)" in str(error)
    assert error.partial_text == "Hel"
    error = stream_interrupted(ValueError("v"), "m/x", cause="ValueError: v")
    assert "(ValueError: v)" in str(error)


def test_stream_interrupted_is_never_wrapped_twice() -> None:
    first = stream_interrupted(httpx.ReadError("x"), "m/x")
    assert stream_interrupted(first, "m/x") is first
    assert first.partial_text == ""
    assert stream_interrupted(first, "m/x", partial_text="Hello") is first
    assert first.partial_text == "Hello"


def test_a_retired_model_has_one_error() -> None:
    from langchain_wandb_router.catalog._models import get_model_info, retired_error

    info = get_model_info("moonshotai/Kimi-K2-Instruct")
    assert info is not None
    error = retired_error(info)
    assert isinstance(error, errors.WandbModelRetiredError)
    assert str(error) == info.retirement_message()
    assert (error.model, error.successor) == (info.id, "moonshotai/Kimi-K2.5")
    assert error.status_code is None
