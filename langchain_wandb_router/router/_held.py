"""What a routed call holds while it runs, so that whatever ends it gives it back.

The interpreters (``_interpreters``, carrying effects out through ``_ways``)
note in a :class:`Held` every slot and reservation an effect hands out or
gives back; the call path's ``finally`` returns what is still held without
asking the driver generator to run again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from langchain_wandb_router.router import _effects as fx
from langchain_wandb_router.state._interface import Lease, Reservation
from langchain_wandb_router.state._leases import KEEPER, LeaseKeeper

__all__ = ["Held"]


@dataclass(slots=True)
class Held:
    """What a call holds right now: slots, a budget reservation, a request.

    The interpreters note every slot and reservation an effect hands out or
    gives back, so that whatever ends a call (an error, ``task.cancel()``,
    ``asyncio.wait_for``, a stream closed early, ``KeyboardInterrupt``) the
    call path's ``finally`` returns what is still held (:func:`undo`,
    :func:`aundo`) without asking the driver generator to run again. Leases
    are kept alive by the lease keeper while held.

    Attributes:
        leases: Slots taken and not yet given back.
        reservation: The budget reservation not yet settled.
        sending: A request may be at W&B now (an attempt or a committed
            stream is under way): if the call ends here, W&B may bill it.
        bill: What to settle if the call ends while sending (micro-dollars);
            ``None``: the reservation's estimate.
        extra: A hedge's own reservation, not yet settled.
        tasks: Attempts started and not yet done or abandoned (hedged
            calls): cancelled if the call ends first.
    """

    keeper: LeaseKeeper = field(default=KEEPER, repr=False)
    leases: list[Lease] = field(default_factory=list)
    reservation: Reservation | None = None
    sending: bool = False
    bill: int | None = None
    extra: Reservation | None = None
    tasks: set[asyncio.Future[Any]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.leases or self.tasks) or (
            self.reservation is not None or self.extra is not None
        )

    def reserved(self, reservation: Reservation | None) -> None:
        """A reservation was handed out (the call's, then a hedge's)."""
        if reservation is None:
            return
        if self.reservation is None:
            self.reservation = reservation
        else:
            self.extra = reservation

    def took(self, lease: Lease | None) -> None:
        """A slot was handed out (``None``: none was)."""
        if lease is not None:
            self.leases.append(lease)
            self.keeper.add(lease)

    def gives_back(self, effect: fx.Effect) -> None:
        """``effect`` is about to return a slot or settle the reservation."""
        if type(effect) is fx.Finish:
            if effect.lease is not None:
                self._drop(effect.lease)
        elif isinstance(effect, fx.Settle):
            if effect.reservation is self.reservation:
                self.reservation = None
            elif effect.reservation is self.extra:
                self.extra = None

    def _drop(self, lease: Lease) -> None:
        self.keeper.discard(lease)
        for i, held in enumerate(self.leases):
            if held is lease:
                del self.leases[i]
                return

    def undo_effects(self) -> list[fx.Finish | fx.Settle]:
        """What gives everything back, as effects; empties the record."""
        effects: list[fx.Finish | fx.Settle] = [
            fx.Finish(lease, lease.key, "other") for lease in self.leases
        ]
        for lease in self.leases:
            self.keeper.discard(lease)
        self.leases = []
        for task in self.tasks:
            task.cancel()  # a hedged call's attempts end with it
        self.tasks = set()
        if self.reservation is not None:
            reservation, self.reservation = self.reservation, None
            cost = 0
            if self.sending:
                # The request may have reached W&B, which may bill it.
                cost = reservation.micro if self.bill is None else self.bill
            effects.append(fx.Settle(reservation, cost))
        if self.extra is not None:
            extra, self.extra = self.extra, None
            effects.append(fx.Settle(extra, extra.micro if self.sending else 0))
        return effects
