"""The emulator's pressure controls: caps, service time, latency, outages, counters.

Mixed into :class:`~langchain_wandb_router.testing.WandbEmulator`; the state
they set lives in ``_load`` (caps, service time, outages, counters) and
``_latency`` (seeded delays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.testing._latency import (
    Latency,
    LatencyDraw,
    LatencySetting,
    LatencyState,
)
from langchain_wandb_router.testing._load import (
    ConcurrencyLimit,
    EmulatorStats,
    LoadState,
    Outage,
    ServiceTime,
)

__all__ = ["PressureControls"]


class PressureControls:
    """How hard the emulator pushes back (see each method)."""

    if TYPE_CHECKING:
        load: LoadState
        latency: LatencyState
        _clock: Callable[[], float]

    def set_concurrency_limit(
        self, limit: ConcurrencyLimit, *, model: str | None = None
    ) -> None:
        """Change the cap on chat requests in flight, effective at once.

        W&B counts requests in flight per project (the ``OpenAI-Project``
        header; :attr:`default_project` without one) and model. A request
        arriving when its ``(project, model)`` is at the cap is answered at once
        with 429 and W&B's body, ``{"error": {"code": "rate_limit_exceeded",
        "message": "concurrency limit reached for requests: <model>-project
        limit reached", "type": "rate_limit_error"}}``; it never counts as in
        flight. Lowering a cap does not cut requests already in flight.

        Args:
            limit: Without ``model``: the whole setting, an int for every
                model, a mapping of model id to cap (``"*"`` for models not
                named; uncapped if absent), or ``None`` for no cap at all.
                With ``model``: that model's cap, or ``None`` to drop its own
                cap so the ``"*"`` one applies.
            model: A bare model id (as requests send it), or ``"*"`` for the
                default cap.

        Raises:
            ValueError: A cap is negative (0 refuses every request).
            TypeError: ``model`` is given with a mapping.
        """
        self.load.set_concurrency_limit(limit, model=model)

    def set_service_time(
        self, seconds: ServiceTime, *, model: str | None = None
    ) -> None:
        """Change how long each chat request is held before its reply.

        The request counts as in flight while held, in its own server thread,
        so other requests go on meanwhile. The wait happens after the request
        is admitted and before the first byte of a successful reply: JSON
        replies and streams alike (a stream's events then follow without
        pauses unless a :class:`Fault` sets ``chunk_delay``). Errors (cap 429s,
        outages, faults, 404s) are answered without it.

        Args:
            seconds: Without ``model``: one figure for every model, or a
                mapping of model id to seconds (``"*"`` for the others; 0 if
                absent). With ``model``: that model's figure.
            model: A bare model id, or ``"*"`` for the default.

        Raises:
            ValueError: A figure is negative.
            TypeError: ``model`` is given with a mapping.
        """
        self.load.set_service_time(seconds, model=model)

    def set_latency(
        self, latency: LatencySetting, *, model: str | None = None, seed: int = 0
    ) -> None:
        """Pace successful replies by time to first token and per token.

        Each request draws its delays (:class:`Latency`) from a generator
        seeded by ``seed`` and the model id: same settings, same draws
        (:meth:`latencies`). They follow the service time, the request in
        flight throughout; a stream sends its headers at once. A client that
        hangs up ends its request at once. Errors are answered without delay.

        Args:
            latency: Without ``model``: a :class:`Latency` for every model, a
                mapping of model id to one (``"*"`` for the others), or
                ``None``. With ``model``: its own, or ``None`` to drop it.
            model: A bare model id, or ``"*"`` for the models not named.
            seed: The seed for the models this covers (their draws restart).

        Raises:
            TypeError: ``model`` with a mapping, or a value not a Latency.
        """
        self.latency.set(latency, model=model, seed=seed)

    def latency_for(self, model: str) -> Latency | None:
        """The latency ``model``'s replies are drawn from (``None``: none)."""
        return self.latency.get(model)

    def latencies(self) -> list[LatencyDraw]:
        """The delays drawn per request since start or reset, in draw order."""
        return self.latency.draws()

    def concurrency_limit_for(self, model: str) -> int | None:
        """The cap on ``model``'s requests in flight per project (``None``: none)."""
        return self.load.concurrency_limit(model)

    def service_time_for(self, model: str) -> float:
        """The seconds ``model``'s successful requests are held before replying."""
        return self.load.service_time(model)

    def outage(
        self,
        model: str = "*",
        *,
        seconds: float | None,
        status: int = 503,
        body: dict[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Outage:
        """Make ``model``'s chat requests fail with ``status`` for a while.

        Unlike :meth:`fault`, an outage is timed rather than counted: every
        matching request admitted while it lasts gets the error at once. A new
        outage for the same ``model`` key replaces the old one; a model's own
        outage wins over an every-model (``"*"``) one.

        Args:
            model: A bare model id, or ``"*"`` for every model.
            seconds: How long, on the emulator's clock; ``None`` lasts until
                :meth:`end_outage`.
            status: The HTTP status to answer with; 503 ("overloaded") by
                default.
            body: The error body; W&B's body for ``status`` by default.
            headers: Extra response headers, e.g. ``{"Retry-After": "5"}``.

        Returns:
            The outage, with the clock reading at which it ends.
        """
        until = None if seconds is None else self._clock() + seconds
        outage = Outage(
            model, until, status, body, MappingProxyType(dict(headers or {}))
        )
        self.load.add_outage(outage)
        return outage

    def end_outage(self, model: str | None = None) -> None:
        """End the outage declared for ``model`` now (``None``: every outage).

        Args:
            model: The same key given to :meth:`outage` (``"*"`` ends only an
                every-model outage).
        """
        self.load.end_outage(model)

    def stats(self) -> EmulatorStats:
        """A consistent, read-only snapshot of the load counters.

        Returns:
            Current and peak requests in flight (all, per model, per
            ``(project, model)``), cap 429s, and answers per model and status.
        """
        return self.load.stats()

    @property
    def in_flight(self) -> int:
        """``POST`` requests being handled now, whatever their outcome."""
        return self.load.in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most ``POST`` requests handled at once since start or reset."""
        return self.load.peak_in_flight
