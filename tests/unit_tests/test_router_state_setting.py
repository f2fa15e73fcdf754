"""``state=`` is checked when the router is made, and its secrets never show.

A value that could not work (a number, an unknown scheme, a URL redis-py cannot
parse) fails at construction with a clear error instead of at the first call;
Redis URLs (single server and Cluster) and redis-py clients are accepted; a
password in the URL appears in no repr, str, ``dumps`` or error.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumps

from langchain_wandb_router import WandbRouter

QWEN = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"
SECRET = "hunter2-redis-pass"


def _router(state: Any) -> WandbRouter:
    return WandbRouter(models=QWEN, api_key="k" * 40, state=state)


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (42, TypeError),
        (object(), TypeError),
        ("memcached://localhost:11211", ValueError),
        ("localhost:6379", ValueError),
        (f"redis://:{SECRET}@localhost:notaport/0", ValueError),
        (f"redis+cluster://:{SECRET}@localhost:7000/3", ValueError),
    ],
)
def test_an_unusable_state_fails_at_construction(state: Any, error: type[Exception]) -> None:
    if isinstance(state, str) and "://" in state and state.startswith("redis"):
        pytest.importorskip("redis")  # checking a Redis URL needs redis-py
    with pytest.raises(error) as caught:
        _router(state)
    assert SECRET not in str(caught.value)
    assert "redis" in str(caught.value).lower()  # says what would be accepted


@pytest.mark.parametrize(
    "state",
    [
        None,
        "redis://localhost:6379/0",
        "rediss://user:pw@cache.example:6380/1",
        "unix:///run/redis.sock",
        "redis+cluster://127.0.0.1:7000",
        "rediss+cluster://127.0.0.1:7000",
    ],
)
def test_usable_states_are_accepted_without_io(state: Any) -> None:
    if state is not None:
        pytest.importorskip("redis")
    _router(state)  # nothing listens on these: construction does no I/O


def test_redis_clients_are_accepted() -> None:
    redis = pytest.importorskip("redis")
    # Plain clients connect lazily; cluster clients (which connect when built)
    # are tested against a real cluster in test_redis_state.py.
    _router(redis.Redis(host="127.0.0.1", port=1))
    _router(redis.asyncio.Redis(host="127.0.0.1", port=1))


def test_without_redis_py_a_redis_url_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed
    with pytest.raises(ImportError, match=r"langchain-wandb-router\[redis\]"):
        _router(f"redis://:{SECRET}@localhost:6379/0")


def test_a_password_in_the_state_url_never_shows() -> None:
    pytest.importorskip("redis")
    router = _router(f"redis://:{SECRET}@localhost:6379/0")
    for text in (repr(router), str(router), dumps(router)):
        assert SECRET not in text
    assert "redis://" in repr(router)  # still says where the state lives
