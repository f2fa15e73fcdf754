"""The lease keeper: every lease a call holds stays alive, in a forked child too."""

from __future__ import annotations

import os
import sys
import time

import pytest

from langchain_wandb_router.state._interface import ConcurrencySettings
from langchain_wandb_router.state._leases import LeaseKeeper
from langchain_wandb_router.state._memory import InProcessState

SHORT = ConcurrencySettings(lease_ttl_seconds=0.3)


def _held_past_its_ttl(keeper: LeaseKeeper, state: InProcessState, key: str) -> bool:
    """Take a lease, keep it three TTLs under ``keeper``; is it still held?"""
    lease = state.try_acquire(key, None)
    assert lease is not None
    keeper.add(lease)
    try:
        time.sleep(0.9)
        return state.in_flight(key) == 1
    finally:
        keeper.discard(lease)
        state.release(lease, "ok")


def test_a_kept_lease_outlives_its_ttl_and_an_unkept_one_does_not() -> None:
    state = InProcessState(concurrency=SHORT)
    assert _held_past_its_ttl(LeaseKeeper(), state, "kept")
    assert state.try_acquire("left", None) is not None
    time.sleep(0.4)
    assert state.in_flight("left") == 0  # nobody renewed it: it expired


def test_a_discarded_lease_is_no_longer_renewed() -> None:
    keeper = LeaseKeeper()
    lease = InProcessState(concurrency=SHORT).try_acquire("k", None)
    assert lease is not None
    keeper.add(lease)
    assert len(keeper) == 1
    keeper.discard(lease)
    assert len(keeper) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")
def test_a_forked_child_renews_its_leases_with_a_thread_of_its_own() -> None:
    keeper = LeaseKeeper()
    state = InProcessState(concurrency=SHORT)
    assert _held_past_its_ttl(keeper, state, "parent")  # the parent's thread runs
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread is not here
        code = 1
        try:
            code = 0 if _held_past_its_ttl(keeper, state, "child") else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
