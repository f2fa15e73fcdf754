"""Routing under load: goodput, latency and 429s against a capped W&B emulator.

The emulator runs in another process (so its CPU is not the client's) with
W&B's behaviour under pressure: at most ``--cap`` requests in flight per
model (more get W&B's concurrency 429 at once) and ``--service-time`` seconds
per request. Each contender (see ``_load_peers.py``) gets a fresh emulator
and a short warm-up, then ``--calls`` async calls, first with
``--concurrency`` of them in flight from the client at a time, then all at
once. The best any client can do is ``cap x models / service time`` calls/s.

    python benchmarks/load.py                      # ~1 to 2 minutes on 2 cores
    python benchmarks/load.py --models 1 --cap 2 --calls 100 --contenders router,chatopenai

LiteLLM runs only where it can be imported; keep it out of the project's
environment and use a throwaway one::

    python3.11 -m venv /tmp/lbench && /tmp/lbench/bin/pip install -e . litellm
    /tmp/lbench/bin/python benchmarks/load.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from _load_peers import CONTENDERS, Call, Contender, Target, litellm_missing

if TYPE_CHECKING:
    from langchain_wandb_router.testing import WandbEmulator

MODELS = (
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "deepseek-ai/DeepSeek-V3.1",
    "meta-llama/Llama-3.3-70B-Instruct",
)
"""Models the contenders spread calls over (the first ``--models`` of them)."""


# --------------------------------------------------------------- the emulator


def serve_commands(
    conn: Connection,
    emu: WandbEmulator,
    stats_of: Callable[[WandbEmulator], dict[str, Any]],
    handle: Callable[[Any], bool] | None = None,
) -> None:
    """Serve ``emu`` to the parent over ``conn`` until told to stop.

    Sends the address first, then answers ``stats`` (``stats_of(emu)``: plain
    dicts, the emulator's snapshot holds read-only mappings, which do not
    pickle) and ``reset``; any other command goes to ``handle`` (``False``:
    stop).
    """
    with emu:
        conn.send((emu.base_url, emu.api_key))
        while True:
            try:
                command = conn.recv()
            except EOFError:  # the benchmark died: stop with it
                return
            if command == "stats":
                conn.send(stats_of(emu))
            elif command == "reset":
                emu.reset()
                conn.send(None)
            elif handle is None or not handle(command):
                return


def _serve(
    conn: Connection, cap: int, service_time: float, retry_after: float | None
) -> None:
    """The emulator's process: serve, answer ``stats``/``reset``, stop on ``stop``."""
    from langchain_wandb_router.testing import WandbEmulator

    emu = WandbEmulator(
        concurrency_limit=cap,
        service_time=service_time,
        rate_limit_retry_after=retry_after,
    )
    serve_commands(conn, emu, _stats)


def _stats(emu: WandbEmulator) -> dict[str, Any]:
    stats = emu.stats()
    return {
        "rejected": stats.rejected,
        "responses": dict(stats.responses),
        "peak_by_model": dict(stats.peak_in_flight_by_model),
        "ok_by_model": {
            model: by_status.get(200, 0)
            for model, by_status in stats.responses_by_model.items()
        },
    }


class EmulatorProcess:
    """A W&B emulator in a child process, driven over a pipe.

    Args:
        cap: Requests in flight per model before W&B's 429.
        service_time: Seconds each admitted request is held.
        retry_after: ``Retry-After`` seconds on the cap's 429s (W&B sends none).
    """

    def __init__(
        self, cap: int, service_time: float, retry_after: float | None
    ) -> None:
        self._start(_serve, cap, service_time, retry_after)

    def _start(self, serve: Callable[..., None], *args: Any) -> None:
        """Run ``serve(conn, *args)`` in a spawned process; learn its address."""
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=serve, args=(child, *args), daemon=True)
        self._proc.start()
        child.close()
        self.base_url, self.api_key = self._ask_start()

    def _ask_start(self) -> tuple[str, str]:
        if not self._conn.poll(30):
            self.stop()
            raise RuntimeError("the emulator's process did not start within 30 s")
        base_url, api_key = self._conn.recv()
        return str(base_url), str(api_key)

    def stats(self) -> dict[str, Any]:
        """Cap 429s, answers per status and peak in flight per model so far."""
        self._conn.send("stats")
        result: dict[str, Any] = self._conn.recv()
        return result

    def reset(self) -> None:
        """Zero the counters (after the warm-up)."""
        self._conn.send("reset")
        self._conn.recv()

    def stop(self) -> None:
        """Stop the server and its process."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()


# ------------------------------------------------------------------- the load


@dataclass
class Outcome:
    """One call: whether it succeeded, how long it took, and why it failed."""

    ok: bool
    seconds: float
    error: str = ""
    detail: str = ""


@dataclass
class Run:
    """One contender under one load, and what the emulator saw."""

    label: str
    calls: int
    wall: float
    outcomes: list[Outcome]
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def successes(self) -> int:
        """Calls that returned an answer."""
        return sum(o.ok for o in self.outcomes)

    def latencies_ms(self) -> list[float]:
        """Latency of each successful call, in milliseconds."""
        return [o.seconds * 1e3 for o in self.outcomes if o.ok]

    def errors(self) -> Counter[str]:
        """Failed calls per error type."""
        return Counter(o.error for o in self.outcomes if not o.ok)


async def _one(
    call: Call, prompt: str, gate: asyncio.Semaphore, timeout: float
) -> Outcome:
    """Send one call once the client's gate lets it; time it from there."""
    async with gate:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(call(prompt), timeout)
        except Exception as exc:  # a failed call is a result here, whatever failed
            detail = "".join(traceback.format_exception(exc))
            return Outcome(
                False, time.perf_counter() - start, type(exc).__name__, detail
            )
        return Outcome(True, time.perf_counter() - start)


async def fire(
    call: Call, calls: int, in_flight: int, timeout: float
) -> tuple[float, list[Outcome]]:
    """Send ``calls`` calls, at most ``in_flight`` at a time from the client.

    Returns:
        The wall seconds from the first call to the last answer, and each
        call's outcome.
    """
    gate = asyncio.Semaphore(in_flight)
    start = time.perf_counter()
    outcomes = await asyncio.gather(
        *(_one(call, f"Say hello, call {i}", gate, timeout) for i in range(calls))
    )
    return time.perf_counter() - start, list(outcomes)


async def measure(
    contender: Contender,
    target_models: tuple[str, ...],
    args: argparse.Namespace,
    in_flight: int,
) -> Run:
    """One contender under one load, against an emulator of its own."""
    emu = EmulatorProcess(args.cap, args.service_time, args.retry_after)
    try:
        target = Target(emu.base_url, emu.api_key, target_models, args.cap)
        call = contender.build(target)
        # Warm-up one call at a time: pools, lazy imports, first-use caches,
        # without teaching any client the cap before the measured burst.
        for i in range(args.warmup):
            await call(f"warm-up {i}")
        emu.reset()
        wall, outcomes = await fire(call, args.calls, in_flight, args.call_timeout)
        run = Run(contender.title(args.cap), args.calls, wall, outcomes)
        run.server = emu.stats()
        return run
    finally:
        emu.stop()


# ----------------------------------------------------------------- the report


def percentile(values: Sequence[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method); NaN without values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def table(runs: Sequence[Run], ideal: float) -> str:
    """The Markdown table for one load."""
    lines = [
        "| contender | success % | goodput calls/s | % of ideal | p50 ms | p99 ms | 429s per call |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        goodput = run.successes / run.wall
        lat = run.latencies_ms()
        lines.append(
            f"| {run.label} | {100 * run.successes / run.calls:.1f} | {goodput:.1f} "
            f"| {100 * goodput / ideal:.0f} | {percentile(lat, 50):.0f} "
            f"| {percentile(lat, 99):.0f} | {run.server['rejected'] / run.calls:.2f} |"
        )
    return "\n".join(lines)


def _per_model(counts: dict[str, int]) -> str:
    """``model: n`` pairs with the vendor cut off, in the order of MODELS."""
    order = {m: i for i, m in enumerate(MODELS)}
    items = sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
    return ", ".join(f"{m.split('/')[-1]} {n}" for m, n in items) or "-"


def details(runs: Sequence[Run], show_tracebacks: bool) -> str:
    """What the table leaves out: requests sent, statuses, peaks, errors."""
    out = []
    for run in runs:
        responses = run.server["responses"]
        sent = sum(responses.values())
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(responses.items()))
        peaks = _per_model(run.server["peak_by_model"])
        served = _per_model(run.server["ok_by_model"])
        out.append(
            f"- {run.label}: wall {run.wall:.1f} s; {sent / run.calls:.2f} requests per call "
            f"({statuses}); answered per model {served}; peak in flight per model {peaks}"
        )
        errors = run.errors()
        for name, count in errors.most_common():
            sample = next(o for o in run.outcomes if o.error == name)
            last = sample.detail.strip().splitlines()[-1] if sample.detail else name
            out.append(f"    - {count} x {last[:300]}")
            if show_tracebacks:
                out.append("      " + sample.detail.replace("\n", "\n      "))
    return "\n".join(out)


# ------------------------------------------------------------------- the CLI


def _positive(text: str) -> int:
    """An argparse type for a count of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=_positive, default=200, help="calls per run")
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=50,
        help="calls in flight from the client in the bounded run",
    )
    parser.add_argument(
        "--cap",
        type=_positive,
        default=3,
        help="emulator's requests in flight per model",
    )
    parser.add_argument(
        "--service-time", type=float, default=0.2, help="seconds per request"
    )
    parser.add_argument(
        "--models", type=int, default=3, choices=range(1, len(MODELS) + 1)
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=None,
        help="Retry-After on 429s (W&B: none)",
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="sequential calls before measuring"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=60.0, help="give up on a call after this"
    )
    parser.add_argument(
        "--loads",
        default="bounded,burst",
        help="bounded (--concurrency at a time), burst (all at once)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(c.key for c in CONTENDERS),
        help="comma-separated keys",
    )
    parser.add_argument(
        "--tracebacks", action="store_true", help="print a traceback per error type"
    )
    return parser


async def main_async(args: argparse.Namespace) -> None:
    """Every load, every contender, then the tables."""
    chosen = [c for c in CONTENDERS if c.key in args.contenders.split(",")]
    if any(c.key.startswith("litellm") for c in chosen) and (why := litellm_missing()):
        print(f"Skipping LiteLLM: {why}.", file=sys.stderr)
        chosen = [c for c in chosen if not c.key.startswith("litellm")]
    models = MODELS[: args.models]
    ideal = args.cap * len(models) / args.service_time
    loads = {
        "bounded": (args.concurrency, f"{args.concurrency} in flight from the client"),
        "burst": (args.calls, "all at once"),
    }
    reports = []
    for load in args.loads.split(","):
        in_flight, how = loads[load]
        runs = []
        for contender in chosen:
            print(
                f"{load}: {contender.title(args.cap)} ...", file=sys.stderr, flush=True
            )
            runs.append(await measure(contender, models, args, in_flight))
        heading = (
            f"### {args.calls} calls, {how}: {len(models)} model(s), cap {args.cap} in flight "
            f"per model, {args.service_time * 1e3:.0f} ms per request "
            f"(ideal {ideal:.1f} calls/s)"
        )
        reports.append(
            f"{heading}\n\n{table(runs, ideal)}\n\n{details(runs, args.tracebacks)}"
        )
    print("\n\n".join(reports))


def main() -> None:
    """Parse the flags and run."""
    started = time.perf_counter()
    asyncio.run(main_async(build_parser().parse_args()))
    print(f"\n(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
