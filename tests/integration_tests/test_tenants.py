"""Two API keys (two accounts) sharing one state never share limits or budget.

The state scope is (base URL, account fingerprint, project); the fingerprint is
a hash of the key, so neither Redis keys nor anything else carries the key.
Two keys share a budget only when both routers name the same ``budget_scope``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from langchain_wandb_router import WandbRouter
from langchain_wandb_router.state._interface import account_fingerprint
from langchain_wandb_router.state._memory import InProcessState
from langchain_wandb_router.testing import WandbEmulator
from tests import redis_server

redis_url = redis_server.redis_url  # the session's redis-server

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
KEY_A = "tenant-a-key-0123456789abcdef0123456789abcdef"
KEY_B = "tenant-b-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["in-process", "redis"])
def shared_state(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One state object or URL both tenants' routers are given."""
    if request.param == "in-process":
        yield InProcessState()
        return
    pytest.importorskip("redis")
    url = request.getfixturevalue("redis_url")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url


def _router(emu: WandbEmulator, key: str, state: Any, **kwargs: Any) -> WandbRouter:
    return WandbRouter(
        models=QWEN, api_key=key, base_url=emu.base_url, state=state, **kwargs
    )


def _as(emu: WandbEmulator, key: str) -> None:
    """The emulator accepts one key at a time: become that tenant."""
    emu.api_key = key


def test_one_accounts_budget_never_refuses_the_others_calls(
    emulator: WandbEmulator, shared_state: Any
) -> None:
    a = _router(emulator, KEY_A, shared_state, budget_usd=1e-6, max_tokens=5)
    b = _router(emulator, KEY_B, shared_state, budget_usd=1e-6, max_tokens=5)
    _as(emulator, KEY_A)
    a.invoke("hi")
    with pytest.raises(Exception, match="Budget"):
        a.invoke("hi")  # A's budget is spent...
    _as(emulator, KEY_B)
    assert b.invoke("hi").content  # ...and B's is untouched
    assert a.spent_usd == b.spent_usd > 0  # one call each


def test_one_accounts_slots_are_not_the_others(
    emulator: WandbEmulator, shared_state: Any
) -> None:
    a = _router(emulator, KEY_A, shared_state, max_in_flight=1, deadline=3.0)
    b = _router(emulator, KEY_B, shared_state, max_in_flight=1, deadline=3.0)
    emulator.fault(chunk_delay=0.05, times=1)
    _as(emulator, KEY_A)
    holding = a.stream("tell me a long story")
    next(holding)  # A holds its only slot
    _as(emulator, KEY_B)
    assert b.invoke("hi").content  # B's cap is its own
    holding.close()


def test_a_named_budget_scope_is_shared_on_purpose(
    emulator: WandbEmulator, shared_state: Any
) -> None:
    a = _router(
        emulator, KEY_A, shared_state, budget_usd=1e-6, max_tokens=5, budget_scope="team"
    )
    b = _router(
        emulator, KEY_B, shared_state, budget_usd=1e-6, max_tokens=5, budget_scope="team"
    )
    _as(emulator, KEY_A)
    a.invoke("hi")
    _as(emulator, KEY_B)
    with pytest.raises(Exception, match="Budget"):
        b.invoke("hi")


def test_state_keys_carry_a_fingerprint_never_the_key(emulator: WandbEmulator) -> None:
    router = _router(emulator, KEY_A, None, budget_usd=1.0)
    runtime = router._rt()
    keys = [router._budget_scope(), *(runtime.key_for(r) for r in router._static or ())]
    assert runtime.account == account_fingerprint(KEY_A) != account_fingerprint(KEY_B)
    for key in keys:
        assert KEY_A not in key and KEY_A[:12] not in key
    assert len({account_fingerprint(k) for k in (KEY_A, KEY_B, KEY_A + "x")}) == 3
