"""What a router keeps between calls: health, concurrency slots, budget.

``_interface`` is :class:`RouterState` with its settings, leases and key
scheme; ``_memory`` keeps it in this process (with ``_waiters``: callers
queued for a slot); ``_redis`` shares it through Redis (its scripts in ``_lua``, its
clients made by ``_connect`` and held by ``_clients``, waiting in
``_redis_waits``) (single server or Cluster; needs redis-py, so they load only
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
