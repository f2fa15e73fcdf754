"""Shared fixtures: a clean environment and a fresh emulator per test that wants one."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import pytest_asyncio
import pytest_asyncio.plugin
import uvloop

from langchain_wandb_router import RetryPolicy
from langchain_wandb_router.testing import WandbEmulator

# Read once, before any test scrubs the environment: the live suite needs it.
LIVE_API_KEY = os.environ.get("WANDB_API_KEY")

_SCRUBBED_PREFIXES = ("WANDB_", "OPENAI_")


# ---------------------------------------------------------------- event loops
# Every async test runs twice: on asyncio's own loop and on uvloop (what uvicorn
# runs on when it is installed). Sync tests run once.

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}

# pytest-asyncio >= 1.4 asks a hook for loop factories and parametrizes only the
# async tests with them. Older versions (the 1.3 floor) take the loop from the
# ``event_loop_policy`` fixture, overridden here and parametrized for async tests
# only (newer versions deprecate overriding it).
if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):

    @pytest.hookimpl(optionalhook=True)
    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        return LOOPS

else:
    _POLICIES: dict[str, Callable[[], asyncio.AbstractEventLoopPolicy]] = {
        "asyncio": asyncio.DefaultEventLoopPolicy,
        "uvloop": uvloop.EventLoopPolicy,
    }

    @pytest.fixture(scope="session")
    def event_loop_policy(
        request: pytest.FixtureRequest,
    ) -> asyncio.AbstractEventLoopPolicy:
        """The policy whose loops run this async test (asyncio's for sync tests)."""
        return _POLICIES[getattr(request, "param", "asyncio")]()

    def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
        # Only async tests get the parameter: sync tests keep their ids (which
        # syrupy's snapshot names are made of) and run once.
        if inspect.iscoroutinefunction(metafunc.function):
            metafunc.parametrize(
                "event_loop_policy", list(_POLICIES), indirect=True, scope="session"
            )


# ------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's W&B or OpenAI settings unless it sets them."""
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name, raising=False)


def _proven_or_none(package: str, text: str | None) -> str | None:
    """The proven upper bound of ``package`` if ``text`` is outside its range."""
    from langchain_wandb_router.chat import _fast_chunks, _fast_messages

    ranges = {**_fast_messages.MESSAGES_PROVEN, **_fast_chunks.CHUNKS_PROVEN}
    if package not in ranges:
        return None
    low, high = ranges[package]
    release = _fast_messages.parse_release(text) if text else None
    if release is not None and low <= release <= high:
        return None
    return ".".join(map(str, high))


@pytest.fixture(autouse=True)
def _as_on_proven_releases(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run every test as on the releases the fenced code was proven against.

    CI installs the newest releases. On one newer than a fence's range, the
    fast paths (and register_provider) step aside for the parent's code, as
    they should; the tests that prove behaviour must still run, so they see
    the proven releases instead, the way the equality proofs force the fast
    paths on. Tests of the fence's real decision opt out with
    ``@pytest.mark.installed_releases``. On a proven install this changes
    nothing.
    """
    if request.node.get_closest_marker("installed_releases"):
        return
    from langchain_wandb_router.chat import _fast_chunks, _fast_messages

    real = _fast_messages.installed_version
    if not any(
        _proven_or_none(p, real(p))
        for p in ("langchain-openai", "langchain-core", "pydantic")
    ):
        return
    monkeypatch.setattr(
        _fast_messages,
        "installed_version",
        lambda package: _proven_or_none(package, real(package)) or real(package),
    )
    if os.environ.get(_fast_messages.FAST_PATHS_ENV) is None:
        monkeypatch.setattr(
            _fast_messages,
            "MESSAGES_FASTPATH_ENABLED",
            _fast_messages.messages_fence({}).enabled,
        )
        monkeypatch.setattr(
            _fast_chunks, "CHUNK_FASTPATH_ENABLED", _fast_chunks.chunk_fence({}).enabled
        )


@pytest.fixture
def emulator() -> Iterator[WandbEmulator]:
    """A private emulator; faults scripted on it affect only this test."""
    with WandbEmulator() as emu:
        yield emu


@pytest.fixture
def sleeps() -> list[float]:
    """The retry waits ``retry_policy`` recorded instead of sleeping."""
    return []


@pytest.fixture
def retry_policy(sleeps: list[float]) -> RetryPolicy:
    """A retry policy whose sleeps are recorded: tests never wait on the clock."""

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    return RetryPolicy(sleep=sleeps.append, asleep=record)


@pytest.fixture
def live_api_key() -> str:
    """The real key, or skip: live tests run only when WANDB_API_KEY is set."""
    if not LIVE_API_KEY:
        pytest.skip("WANDB_API_KEY is not set; live W&B tests skipped")
    return LIVE_API_KEY


# Figures reliability tests report (peak concurrency, retries...), printed at the end.
REPORT: list[str] = []


@pytest.fixture
def report() -> list[str]:
    """Append a line here to have it printed in the test run's summary."""
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("reliability figures")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def chat_factory(
    emulator: WandbEmulator, retry_policy: RetryPolicy
) -> Callable[..., Any]:
    """Build ChatWandb against this test's emulator, with recorded retry sleeps."""
    from langchain_wandb_router import ChatWandb

    def factory(
        model: str = "Qwen/Qwen3-235B-A22B-Instruct-2507", **kwargs: Any
    ) -> Any:
        kwargs.setdefault("retry_policy", retry_policy)
        return ChatWandb(
            model=model, api_key=emulator.api_key, base_url=emulator.base_url, **kwargs
        )

    return factory


@pytest.fixture
def router_factory(
    emulator: WandbEmulator, retry_policy: RetryPolicy
) -> Callable[..., Any]:
    """Build WandbRouter against this test's emulator, with recorded retry sleeps."""
    from langchain_wandb_router import WandbRouter

    def factory(models: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("retry_policy", retry_policy)
        return WandbRouter(
            models=models,
            api_key=emulator.api_key,
            base_url=emulator.base_url,
            **kwargs,
        )

    return factory
