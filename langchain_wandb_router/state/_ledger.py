"""What one process learnt of each budget scope from Redis's answers.

Every budget script answers with the scope's spend, its open reservations,
its generation and how many processes use it; :class:`Ledger` keeps those, so
that each budget script can say what this process saw (:class:`Known`: a
record Redis lost is rebuilt from the most any process saw, with one warning
here), and so that an outage knows this process's share of what was left.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from langchain_wandb_router.state._lua import Known, new_token, reply_text

__all__ = ["Ledger"]

logger = logging.getLogger("langchain_wandb_router")


class Ledger:
    """This process's view of every budget scope it used.

    Args:
        url: The state's URL as shown (for the warning on a lost record).

    Attributes:
        member: This process's id among a scope's members.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self.member = new_token()
        self._generation: dict[str, str] = {}  # the generation id last seen
        # The largest spend seen (what a lost record is rebuilt from).
        self._most_spent: dict[str, int] = {}
        self._committed: dict[str, int] = {}  # spend + reservations, last answer
        self._members: dict[str, int] = {}  # processes using it, last answer

    def known(self, scope: str) -> Known:
        """What this process knows of ``scope``, to send with a budget script."""
        return Known(
            self._generation.get(scope, ""),
            self._most_spent.get(scope, 0),
            new_token(),
            self.member,
        )

    def most_spent(self, scope: str) -> int:
        """The largest spend of ``scope`` this process saw."""
        with self._lock:
            return self._most_spent.get(scope, 0)

    def learn(self, scope: str, reply: list[Any]) -> int:
        """Record a budget script's answer; the spend it reports."""
        spent, outstanding = int(reply[1]), int(reply[2])
        generation, restored = reply_text(reply[3]), int(reply[4])
        with self._lock:
            seen = self._generation.get(scope)
            saw_most = self._most_spent.get(scope, 0)
            self._generation[scope] = generation
            self._most_spent[scope] = max(saw_most, spent)
            self._committed[scope] = spent + outstanding
            self._members[scope] = max(1, int(reply[5]))
        if seen and seen != generation:
            logger.warning(
                "Shared router state at %s had lost the budget record %s (Redis "
                "restarted without persistence, or evicted it); spend was rebuilt "
                "from what the fleet's processes had seen and is now %d micro-USD "
                "(this process had seen %d%s).",
                self._url,
                scope,
                spent,
                saw_most,
                f"; it restored {restored}" if restored else "",
            )
        return spent

    def share(self, scope: str, budget_micro: int) -> int:
        """What this process may reserve on its own while Redis is away.

        (budget - spent - reserved, as Redis last told this process) //
        (processes that made a budget call within ``MEMBER_TTL_SECONDS``
        before that answer).
        """
        with self._lock:
            committed = self._committed.get(scope, self._most_spent.get(scope, 0))
            members = self._members.get(scope, 1)
        return max(0, budget_micro - committed) // members
