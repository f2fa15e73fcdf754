"""The emulator under load: concurrency caps, service times, outages, counters.

W&B caps the requests in flight per project and model and answers the excess
at once with a 429; engines take time to answer; models go down for a while.
:class:`LoadState` keeps that state for :class:`WandbEmulator` behind one lock,
so admitting a request costs one lock and a few dict operations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "ANY_MODEL",
    "DEFAULT_PROJECT",
    "ConcurrencyLimit",
    "EmulatorStats",
    "LoadState",
    "Outage",
    "ServiceTime",
    "concurrency_error_body",
]

ANY_MODEL = "*"
"""The key of a per-model setting that applies to every model not named."""

DEFAULT_PROJECT = "default/inference"
"""The project W&B bills when a request carries no ``OpenAI-Project`` header."""

ConcurrencyLimit = int | Mapping[str, int] | None
"""A cap on requests in flight: one for every model, per model id, or none."""

ServiceTime = float | Mapping[str, float]
"""Seconds a request is held before its reply: one for every model or per id."""

_T = TypeVar("_T", int, float)


def concurrency_error_body(model: str) -> dict[str, Any]:
    """W&B's 429 body for a full concurrency cap on ``model``.

    Args:
        model: The model id as the request sent it.

    Returns:
        ``{"error": {"code": "rate_limit_exceeded", "message": ..., "type":
        "rate_limit_error"}}`` with W&B's lower-case message.
    """
    return {
        "error": {
            "code": "rate_limit_exceeded",
            "message": (
                f"concurrency limit reached for requests: {model}-project limit reached"
            ),
            "type": "rate_limit_error",
        }
    }


def _split(
    value: _T | Mapping[str, _T] | None, default: _T | None, what: str
) -> tuple[_T | None, dict[str, _T]]:
    """A per-model setting as (value for unnamed models, value per named model)."""
    if value is None or isinstance(value, int | float):
        pairs: dict[str, _T] = {} if value is None else {ANY_MODEL: value}
    else:
        pairs = dict(value)
    for model, number in pairs.items():
        if number < 0:
            raise ValueError(f"{what} for {model!r} must be >= 0, got {number!r}")
    return pairs.pop(ANY_MODEL, default), pairs


@dataclass(frozen=True)
class Outage:
    """A model (or every model) failing with ``status`` until a deadline.

    Attributes:
        model: The bare model id it applies to, or ``"*"`` for every model.
        until: The clock reading at which it ends; ``None`` until ended by hand.
        status: The HTTP status every matching request gets.
        body: The error body; ``None`` for W&B's body for ``status``.
        headers: Extra response headers, e.g. ``{"Retry-After": "5"}``.
    """

    model: str
    until: float | None
    status: int
    body: dict[str, Any] | str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class EmulatorStats:
    """A point-in-time copy of the emulator's load counters (read-only).

    "In flight" per model and per project counts chat requests admitted past
    the concurrency cap, from admission until just before their last bytes
    are written (service time, faults' delays and whole streams included), so
    a client that has read a reply never finds it still counted, nor its slot
    taken. A request the cap turned away with a 429 is never in flight.

    Model keys are the ids as requests sent them (``""`` when a request named
    none); project keys are the ``OpenAI-Project`` header, or the emulator's
    default project without one.
    Peaks and counts cover the time since the emulator started or was last
    :meth:`~WandbEmulator.reset`.

    Attributes:
        in_flight: ``POST`` requests being handled now, whatever their outcome
            (the same figure as ``WandbEmulator.in_flight``).
        peak_in_flight: The most ``POST`` requests handled at once (the same
            figure as ``WandbEmulator.peak_in_flight``).
        in_flight_by_model: Admitted chat requests in flight now, per model.
        peak_in_flight_by_model: The most admitted at once, per model
            (all projects together).
        in_flight_by_project: Admitted requests in flight now, per
            ``(project, model)``: what the cap limits.
        peak_in_flight_by_project: The most admitted at once, per
            ``(project, model)``.
        rejected: 429s sent because a concurrency cap was full (429s scripted
            with ``fault()`` or ``chaos()`` are not counted here).
        rejected_by_model: The same, per model.
        responses_by_model: Chat-completions requests answered, per model and
            HTTP status (cap 429s, outages and faults included), counted as
            the reply's last bytes go out. A connection dropped before a
            status line was sent is not counted.
    """

    in_flight: int
    peak_in_flight: int
    in_flight_by_model: Mapping[str, int]
    peak_in_flight_by_model: Mapping[str, int]
    in_flight_by_project: Mapping[tuple[str, str], int]
    peak_in_flight_by_project: Mapping[tuple[str, str], int]
    rejected: int
    rejected_by_model: Mapping[str, int]
    responses_by_model: Mapping[str, Mapping[int, int]]

    @property
    def responses(self) -> Mapping[int, int]:
        """Chat-completions requests answered per HTTP status, all models together."""
        total: dict[int, int] = {}
        for by_status in self.responses_by_model.values():
            for status, count in by_status.items():
                total[status] = total.get(status, 0) + count
        return MappingProxyType(total)


class LoadState:
    """Caps, service times, outages and counters, guarded by one lock.

    Args:
        concurrency_limit: The initial cap (see :meth:`set_concurrency_limit`).
        service_time: The initial service time (see :meth:`set_service_time`).
        clock: Monotonic seconds; outages are measured on it.
    """

    def __init__(
        self,
        concurrency_limit: ConcurrencyLimit,
        service_time: ServiceTime,
        clock: Callable[[], float],
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._cap_default: int | None = None
        self._caps: dict[str, int] = {}
        self._service_default: float = 0.0
        self._service: dict[str, float] = {}
        self._outages: list[Outage] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._by_key: dict[tuple[str, str], int] = {}
        self._peak_by_key: dict[tuple[str, str], int] = {}
        self._by_model: dict[str, int] = {}
        self._peak_by_model: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._responses: dict[str, dict[int, int]] = {}
        self.set_concurrency_limit(concurrency_limit)
        self.set_service_time(service_time)

    # ------------------------------------------------------------- settings

    def set_concurrency_limit(
        self, limit: ConcurrencyLimit, *, model: str | None = None
    ) -> None:
        """Replace every cap, or (with ``model``) the cap of one model id."""
        with self._lock:
            if model is None:
                self._cap_default, self._caps = _split(limit, None, "cap")
                return
            if limit is not None and not isinstance(limit, int):
                raise TypeError("with model=, the cap must be an int or None")
            _split(limit, None, "cap")  # validates
            if model == ANY_MODEL:
                self._cap_default = limit
            elif limit is None:
                self._caps.pop(model, None)
            else:
                self._caps[model] = limit

    def set_service_time(
        self, seconds: ServiceTime, *, model: str | None = None
    ) -> None:
        """Replace every service time, or (with ``model``) one model's."""
        with self._lock:
            if model is None:
                default, self._service = _split(seconds, 0.0, "service time")
                self._service_default = default or 0.0
                return
            if not isinstance(seconds, int | float):
                raise TypeError("with model=, the service time must be a number")
            _split(seconds, 0.0, "service time")  # validates
            if model == ANY_MODEL:
                self._service_default = float(seconds)
            else:
                self._service[model] = float(seconds)

    def concurrency_limit(self, model: str) -> int | None:
        """The cap that applies to ``model`` (``None``: uncapped)."""
        return self._caps.get(model, self._cap_default)

    def service_time(self, model: str) -> float:
        """Seconds to hold a request for ``model`` before replying."""
        return self._service.get(model, self._service_default)

    def add_outage(self, outage: Outage) -> None:
        """Start ``outage``; it replaces an earlier one for the same model key."""
        with self._lock:
            self._outages = [o for o in self._outages if o.model != outage.model]
            self._outages.append(outage)

    def end_outage(self, model: str | None) -> None:
        """End the outage declared for ``model`` (``None``: every outage)."""
        with self._lock:
            self._outages = [
                o for o in self._outages if model is not None and o.model != model
            ]

    def outage_for(self, model: str) -> Outage | None:
        """The outage ``model`` is in now, if any; expired outages are dropped.

        An outage declared for ``model`` itself wins over an every-model one.
        """
        if not self._outages:  # the common case costs no lock
            return None
        now = self._clock()
        with self._lock:
            self._outages = [
                o for o in self._outages if o.until is None or now < o.until
            ]
            fallback = None
            for outage in self._outages:
                if outage.model == model:
                    return outage
                if outage.model == ANY_MODEL:
                    fallback = outage
        return fallback

    # ------------------------------------------------------------- counting

    def enter(self) -> None:
        """A ``POST`` arrived (counted before its body is even read)."""
        with self._lock:
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight

    def admit(self, project: str, model: str) -> bool:
        """Take a slot under ``(project, model)``'s cap, or count a rejection.

        Returns:
            ``True`` if the request is now in flight (call :meth:`leave` with
            the same key), ``False`` if the cap is full and it must get a 429.
        """
        key = (project, model)
        with self._lock:
            cap = self._caps.get(model, self._cap_default)
            current = self._by_key.get(key, 0)
            if cap is not None and current >= cap:
                self._rejected[model] = self._rejected.get(model, 0) + 1
                return False
            current += 1
            self._by_key[key] = current
            if current > self._peak_by_key.get(key, 0):
                self._peak_by_key[key] = current
            per_model = self._by_model.get(model, 0) + 1
            self._by_model[model] = per_model
            if per_model > self._peak_by_model.get(model, 0):
                self._peak_by_model[model] = per_model
            return True

    def leave(
        self,
        admitted: tuple[str, str] | None,
        model: str | None,
        status: int | None,
    ) -> None:
        """A ``POST`` is done: free its slot and count its status.

        Args:
            admitted: The ``(project, model)`` it was admitted under, if it was.
            model: The model key of a chat-completions request, else ``None``.
            status: The status line sent, if any.
        """
        with self._lock:
            self.in_flight -= 1
            if admitted is not None:
                self._by_key[admitted] -= 1
                self._by_model[admitted[1]] -= 1
            if model is not None and status is not None:
                by_status = self._responses.setdefault(model, {})
                by_status[status] = by_status.get(status, 0) + 1

    def reset(self) -> None:
        """Zero the counts, end outages; peaks restart from what is in flight."""
        with self._lock:
            self._outages = []
            self.peak_in_flight = self.in_flight
            self._peak_by_key = {k: v for k, v in self._by_key.items() if v}
            self._peak_by_model = {k: v for k, v in self._by_model.items() if v}
            self._rejected = {}
            self._responses = {}

    def stats(self) -> EmulatorStats:
        """Copy the counters.

        Keys with nothing in flight are left out of the current in-flight maps.
        """
        with self._lock:
            return EmulatorStats(
                in_flight=self.in_flight,
                peak_in_flight=self.peak_in_flight,
                in_flight_by_model=_frozen(
                    {k: v for k, v in self._by_model.items() if v}
                ),
                peak_in_flight_by_model=_frozen(self._peak_by_model),
                in_flight_by_project=_frozen(
                    {k: v for k, v in self._by_key.items() if v}
                ),
                peak_in_flight_by_project=_frozen(self._peak_by_key),
                rejected=sum(self._rejected.values()),
                rejected_by_model=_frozen(self._rejected),
                responses_by_model=MappingProxyType(
                    {m: _frozen(s) for m, s in self._responses.items()}
                ),
            )


_K = TypeVar("_K")


def _frozen(mapping: Mapping[_K, int]) -> Mapping[_K, int]:
    return MappingProxyType(dict(mapping))
