"""What a router keeps between calls: health, concurrency slots, budget.

``_interface`` is :class:`RouterState` with its settings, leases and key
scheme; ``_memory`` keeps it in this process (with ``_waiters``: callers
queued for a slot); ``_redis``, ``_redis_scripts`` and ``_redis_waits`` share
it through Redis (single server or Cluster; needs redis-py, so they load only
when asked for); ``_leases`` renews the leases of calls in progress.
"""

from langchain_wandb_router.state._factory import check_state, state_from
from langchain_wandb_router.state._interface import (
    BudgetSettings,
    ConcurrencySettings,
    HealthSettings,
    Lease,
    Reservation,
    RouterState,
    SlotTimeoutError,
    StateUnavailableError,
)
from langchain_wandb_router.state._memory import InProcessState

__all__ = [
    "BudgetSettings",
    "ConcurrencySettings",
    "HealthSettings",
    "InProcessState",
    "Lease",
    "Reservation",
    "RouterState",
    "SlotTimeoutError",
    "StateUnavailableError",
    "check_state",
    "state_from",
]
