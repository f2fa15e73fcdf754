"""What a router keeps between calls: health, concurrency slots, budget.

The rooms:

- ``_interface``: :class:`RouterState`, its settings, leases, reservations,
  keys and checks; the default multi-route wait; ``QueuedState``.
- ``_factory``: the router's ``state=`` setting made into a state.
- ``_steps``: the one sync/async strategy: operations written as steps, run
  by one driver with a blocking or an awaiting interpreter.
- ``_memory``: :class:`InProcessState`, the state in this process;
  ``_waiters``: callers queued for a slot, and parking them.
- ``_stats``: live route statistics (observations, windows, figures).
- ``_leases``: the heartbeat renewing the leases of calls in progress.
- ``_urls``: keeping a Redis URL's password out of anything shown.
- Redis (needs redis-py, so these load only when asked for): ``_redis``,
  ``RedisState`` and its operations; ``_runner``, running its scripts and
  steps through outages; ``_outage``, what stands in while Redis is away;
  ``_ledger``, what it learnt of each budget; ``_redis_waits``, its waiters'
  queues and pub/sub; ``_lua``, the scripts and their call builders
  (``_lua_stats`` and ``_redis_stats``: the statistics' part);
  ``_clients``, the live clients per event loop; ``_connect``, making them
  from a URL or a client.
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
from langchain_wandb_router.state._stats import Observation, RouteStats

__all__ = [
    "BudgetSettings",
    "ConcurrencySettings",
    "HealthSettings",
    "InProcessState",
    "Lease",
    "Observation",
    "Reservation",
    "RouteStats",
    "RouterState",
    "SlotTimeoutError",
    "StateUnavailableError",
    "check_state",
    "state_from",
]
