"""Tail latency: WandbRouter's strategies and hedging against LiteLLM and ChatOpenAI.

Three equivalent catalog models, served by the W&B emulator in another process
(so its CPU is not the client's), each with a seeded latency (``Latency``:
time to first token, time per token, heavy tail, jitter):

- ``Qwen/Qwen3-235B-A22B-Instruct-2507``, first in the user's order (the
  cheapest): the best median, 50 ms to first token, but 5% of its requests
  are 10x slower (500 ms): the heavy tail;
- ``openai/gpt-oss-120b``: 60 ms, no tail;
- ``deepseek-ai/DeepSeek-V3.1``: the slower median, 80 ms, no tail.

Every model: 1 ms per token (the emulator's ~20-token answers), a lognormal
jitter of sigma 0.1, and a cap of ``--cap`` (20) requests in flight, W&B's
concurrency 429 past it. The figures are small so that a run is short
(``--scale`` multiplies them all); what matters is their ratios: a tail 10x
the median, medians 20% and 60% apart.

Each contender sends ``--calls`` (400) async calls, ``--concurrency`` (20) in
flight from the client, once as ``ainvoke`` and once as ``astream``, each
after ``--warmup`` sequential calls and an emulator reset. The WandbRouter rows
all have ``max_in_flight`` equal to the emulator's cap, so a hedge can only
ever start on a free slot: a 429 in a hedged row would be one the hedge caused.
Reported per row:

- p50/p95/p99 of the call's latency (invoke) or time to first chunk (stream);
- extra requests: requests the emulator received beyond one per call, as a
  share of calls (hedges, retries and 429s alike);
- 429s: the emulator's concurrency rejections;
- cost per call: every request the emulator admitted (hedges that lost
  included, billed as a whole answer: an upper bound) priced from the usage
  the answers reported and the catalog's prices of the model;
- which model served the answers.

Then the shift: ``strategy="latency"`` sends ``2 x --shift-after`` calls
(20 in flight) to the same models without the heavy tail, so the fastest
route is plain (50 ms); as call ``--shift-after + 1`` is sent, the model that
served most of the last 20 answers turns 10x slower (the emulator's process
is told over its pipe: its CLI has no runtime control) while the calls in
flight go on. Reported: the share of calls that model served before (over
them all, and over their last half, after the start-up measuring of every
route), how many calls after the slowdown still went to it, and after how
many the router had moved away for good (no later run of 20 calls sends it more than 2; exploration sends about
2.5%). The shift runs first, and LiteLLM last: what LiteLLM leaves running in
the process (its logging workers) must not burden the others.

    python benchmarks/tail.py                   # about 70 s on 2 shared cores
    python benchmarks/tail.py --calls 40 --contenders ordered,ordered+hedge
    python benchmarks/tail.py --contenders none     # the shift only

LiteLLM runs only where it can be imported; keep it out of the project's
environment and use a throwaway one::

    python3.11 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install -e ".[agents,test]" litellm
    /tmp/benchvenv/bin/python benchmarks/tail.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from _load_peers import Target, litellm_missing
from _tail_peers import Answer, Peer, TimedCall, peers
from load import (
    EmulatorProcess,
    Outcome,
    _positive,
    fire,
    percentile,
    serve_commands,
)

from langchain_wandb_router.testing import Latency

TAIL, CLEAN, SLOW = (
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-V3.1",
)
MODELS = (TAIL, CLEAN, SLOW)
"""The routes, in the user's order."""

LATENCIES = {
    TAIL: Latency(0.05, 0.001, tail_share=0.05, tail_factor=10, jitter=0.1),
    CLEAN: Latency(0.06, 0.001, jitter=0.1),
    SLOW: Latency(0.08, 0.001, jitter=0.1),
}
"""Each model's timing before ``--scale``."""

SLOWDOWN = 10.0
"""How much slower the favoured model turns in the shift scenario."""

SHIFT_WINDOW, SHIFT_MOST = 20, 2
"""The router has moved away once no later run of 20 calls sends more than 2
of them to the slowed model (exploration sends about 2.5% of calls there)."""


def _short(model: str) -> str:
    return model.split("/")[-1]


# --------------------------------------------------------------- the emulator


def _serve(
    conn: Connection, cap: int, latencies: dict[str, Latency], seed: int
) -> None:
    """The emulator's process: serve; answer ``stats``, ``reset`` and
    ``("latency", model, Latency)``; stop on anything else."""
    from langchain_wandb_router.testing import WandbEmulator

    emu = WandbEmulator(concurrency_limit=cap, latency=latencies, latency_seed=seed)

    def set_latency(command: Any) -> bool:
        if not (isinstance(command, tuple) and command[0] == "latency"):
            return False
        emu.set_latency(command[2], model=command[1], seed=seed)
        conn.send(None)
        return True

    serve_commands(conn, emu, _stats, set_latency)


def _stats(emu: Any) -> dict[str, Any]:
    stats, draws = emu.stats(), emu.latencies()
    return {
        "in_flight": stats.in_flight,
        "rejected": stats.rejected,
        "requests": len(emu.chat_requests()),
        "admitted": dict(Counter(d.model for d in draws)),
        "tails": dict(Counter(d.model for d in draws if d.tail)),
        "peak": dict(stats.peak_in_flight_by_model),
    }


class TailEmulator(EmulatorProcess):
    """``load.EmulatorProcess`` serving seeded latencies, adjustable at run time.

    Args:
        cap: Requests in flight per model before W&B's 429.
        latencies: Each model's timing.
        seed: The seed of the latency draws (they restart at every reset).
    """

    def __init__(self, cap: int, latencies: dict[str, Latency], seed: int) -> None:
        self._start(_serve, cap, latencies, seed)

    def set_latency(self, model: str, latency: Latency) -> None:
        """Change one model's timing now (its draws restart from the seed)."""
        self._conn.send(("latency", model, latency))
        self._conn.recv()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is in flight (abandoned hedges end), then reset."""
        deadline = time.monotonic() + timeout
        while self.stats()["in_flight"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.reset()


# ------------------------------------------------------------------ the runs


@dataclass
class TailRun:
    """One contender in one mode: each call's outcome and answer, and the server's view."""

    label: str
    stream: bool
    router: bool
    calls: int
    wall: float
    outcomes: list[Outcome]
    answers: list[Answer]
    server: dict[str, Any]

    def seconds(self) -> list[float]:
        """Each answer's latency (invoke) or time to first chunk (stream)."""
        return [a.seconds for a in self.answers]

    def p(self, pct: int) -> float:
        """A percentile of :meth:`seconds`, in milliseconds."""
        return percentile(self.seconds(), pct) * 1e3

    @property
    def extra(self) -> float:
        """Requests beyond one per call, as a share of calls."""
        return (int(self.server["requests"]) - self.calls) / self.calls

    def served(self) -> Counter[str]:
        """Answers per serving model."""
        return Counter(a.model for a in self.answers)

    def cost_per_call(self) -> float | None:
        """USD per call: every admitted request at its model's mean answer cost."""
        from langchain_wandb_router.catalog import get_model_info

        total = 0.0
        for model, admitted in self.server["admitted"].items():
            info = get_model_info(model)
            if info is None or not info.pricing.known:
                return None
            mine = [a for a in self.answers if a.model == model] or self.answers
            if not mine:
                return None
            tokens_in = sum(a.input_tokens for a in mine) / len(mine)
            tokens_out = sum(a.output_tokens for a in mine) / len(mine)
            price_in, price_out = info.pricing.input or 0.0, info.pricing.output or 0.0
            total += admitted * (tokens_in * price_in + tokens_out * price_out) / 1e6
        return total / self.calls


def _recorded(call: TimedCall) -> tuple[TimedCall, list[Answer]]:
    """``call``, keeping every answer in the returned list."""
    answers: list[Answer] = []

    async def record(prompt: str) -> Answer:
        answer = await call(prompt)
        answers.append(answer)
        return answer

    return record, answers


async def _warmed(
    peer: Peer, stream: bool, emu: TailEmulator, args: argparse.Namespace
) -> tuple[TimedCall, list[Answer]]:
    """A fresh client recording its answers, after ``--warmup`` sequential calls
    (pools, lazy imports) and an emulator reset."""
    target = Target(emu.base_url, emu.api_key, MODELS, args.cap)
    call, answers = _recorded(peer.build(target, stream))
    for i in range(args.warmup):
        await call(f"warm-up {i}")
    await emu.settle()
    answers.clear()
    return call, answers


async def measure(
    peer: Peer, stream: bool, emu: TailEmulator, args: argparse.Namespace
) -> TailRun:
    """One contender in one mode."""
    call, answers = await _warmed(peer, stream, emu, args)
    wall, outcomes = await fire(call, args.calls, args.concurrency, args.call_timeout)
    await asyncio.sleep(0.2)  # let abandoned hedges reach the server's counters
    server = emu.stats()
    return TailRun(
        peer.label, stream, peer.router, args.calls, wall, outcomes, answers, server
    )


@dataclass
class Shift:
    """The latency strategy before and after its favourite slows down."""

    stream: bool
    slowed: str
    before: list[str]
    """The serving model of each call before the slowdown, in sending order."""
    after: list[str]
    """The same after the slowdown."""

    def share(self, calls: Sequence[str]) -> float:
        """The share of ``calls`` the slowed model served."""
        return calls.count(self.slowed) / max(1, len(calls))

    @property
    def moved_after(self) -> int | None:
        """Calls after the slowdown until the router has moved away for good.

        One past the last call sent to the slowed model within a run of
        ``SHIFT_WINDOW`` calls that sent it more than ``SHIFT_MOST``; ``None``
        if such runs go on to the last ``SHIFT_WINDOW`` calls.
        """
        sent = [model == self.slowed for model in self.after]
        moved = 0
        for start in range(len(sent) - SHIFT_WINDOW + 1):
            window = sent[start : start + SHIFT_WINDOW]
            if sum(window) > SHIFT_MOST:
                last = max(i for i, hit in enumerate(window) if hit)
                moved = max(moved, start + last + 1)
        return moved if moved <= len(sent) - SHIFT_WINDOW else None


async def shift(
    peer: Peer, stream: bool, emu: TailEmulator, args: argparse.Namespace
) -> Shift:
    """``--shift-after`` calls on tail-free models, then the favourite slows down.

    One stream of ``2 x --shift-after`` calls: as call ``--shift-after + 1``
    is sent, the model that served most of the last 20 answers turns
    ``SLOWDOWN`` times slower, the calls in flight going on meanwhile.
    """
    healthy = {
        m: _scaled(replace(lat, tail_share=0.0), args.scale)
        for m, lat in LATENCIES.items()
    }
    for model, latency in healthy.items():
        emu.set_latency(model, latency)
    call, answers = await _warmed(peer, stream, emu, args)
    sent, slowed, switched = 0, "", float("inf")

    async def send(prompt: str) -> Answer:
        nonlocal sent, slowed, switched
        sent += 1
        if sent == args.shift_after + 1:
            slowed = Counter(a.model for a in answers[-20:]).most_common(1)[0][0]
            fast = healthy[slowed]
            emu.set_latency(slowed, replace(fast, ttft=fast.ttft * SLOWDOWN))
            switched = time.perf_counter()
        return await call(prompt)

    await fire(send, 2 * args.shift_after, args.concurrency, args.call_timeout)
    for model in MODELS:
        emu.set_latency(model, _scaled(LATENCIES[model], args.scale))
    ordered = sorted(answers, key=lambda a: a.start)
    before = [a.model for a in ordered if a.start < switched]
    after = [a.model for a in ordered if a.start >= switched]
    return Shift(stream, slowed, before, after)


# ----------------------------------------------------------------- the report


def _mode(stream: bool) -> str:
    return "astream, time to first chunk" if stream else "ainvoke, latency"


def table(runs: Sequence[TailRun]) -> str:
    """The Markdown table for one mode."""
    lines = [
        "| contender | p50 ms | p95 ms | p99 ms | extra requests | 429s | µ$ per call "
        "| answered by Qwen3 / gpt-oss / DeepSeek | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in runs:
        cost = run.cost_per_call()
        served = run.served()
        shares = " / ".join(
            f"{100 * served[m] / max(1, len(run.answers)):.0f}%" for m in MODELS
        )
        label = f"**{run.label}**" if run.router else run.label
        lines.append(
            f"| {label} | {run.p(50):.0f} | {run.p(95):.0f} | {run.p(99):.0f} "
            f"| {100 * run.extra:.1f}% | {run.server['rejected']} "
            f"| {'-' if cost is None else f'{cost * 1e6:.2f}'} | {shares} "
            f"| {run.calls - len(run.answers)} |"
        )
    return "\n".join(lines)


def details(runs: Iterable[TailRun]) -> str:
    """What the table leaves out: wall time, tails drawn, peaks, errors."""
    out = []
    for run in runs:
        tails = ", ".join(f"{_short(m)} {n}" for m, n in run.server["tails"].items())
        peaks = ", ".join(f"{_short(m)} {n}" for m, n in run.server["peak"].items())
        out.append(
            f"- {run.label}: wall {run.wall:.1f} s; {run.server['requests']} requests; "
            f"tail draws {tails or '-'}; peak in flight {peaks or '-'}"
        )
        errors = Counter(o.error for o in run.outcomes if not o.ok)
        for name, count in errors.most_common():
            sample = next(o for o in run.outcomes if o.error == name)
            last = sample.detail.strip().splitlines()[-1] if sample.detail else name
            out.append(f"    - {count} x {last[:300]}")
    return "\n".join(out)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def goals(
    runs: Sequence[TailRun], shifts: Sequence[Shift], args: argparse.Namespace
) -> str:
    """The issue's goals, each with the figures of this run."""
    out = []
    for stream in (False, True):
        rows = {r.label: r for r in runs if r.stream == stream}
        by_key = {p.key: rows.get(p.label) for p in peers(args.hedge)}
        ordered, mode = by_key.get("ordered"), _mode(stream).split(",")[0]
        for key in ("ordered+hedge", "latency+hedge"):
            hedged = by_key.get(key)
            if hedged is None or ordered is None:
                continue
            ratio = hedged.p(99) / ordered.p(99)
            ok = ratio <= 0.5 and hedged.extra <= 0.12 and not hedged.server["rejected"]
            out.append(
                f"- {mode}, {key}: p99 {hedged.p(99):.0f} ms = {ratio:.2f}x ordered's "
                f"{ordered.p(99):.0f} ms (goal <= 0.5x), {100 * hedged.extra:.1f}% extra "
                f"requests (goal <= 12%), {hedged.server['rejected']} 429s: "
                f"{_verdict(ok)}"
            )
        latency = by_key.get("latency")
        if latency is not None and latency.answers:
            served = latency.served()
            share = served[TAIL] / len(latency.answers)
            best, n = served.most_common(1)[0]
            out.append(
                f"- {mode}, latency: {100 * share:.0f}% of calls to {_short(TAIL)}, the "
                f"lowest median (goal >= 80%): {_verdict(share >= 0.8)}; most went to "
                f"{_short(best)} ({100 * n / len(latency.answers):.0f}%)"
            )
        others = [r.p(99) for r in rows.values() if not r.router]
        if others and len(others) < len(rows):
            behind = [
                r.label for r in rows.values() if r.router and r.p(99) >= min(others)
            ]
            out.append(
                f"- {mode}: every WandbRouter row ahead of both peers on p99 "
                f"(best peer {min(others):.0f} ms): {_verdict(not behind)}"
                + (f"; not ahead: {', '.join(behind)}" if behind else "")
            )
    for s in shifts:
        moved, name = s.moved_after, _short(s.slowed)
        settled = s.share(s.before[len(s.before) // 2 :])
        out.append(
            f"- shift, {_mode(s.stream).split(',')[0]}, no tail: before the slowdown "
            f"{name} served {100 * s.share(s.before):.0f}% of {len(s.before)} calls, "
            f"{100 * settled:.0f}% of the last half (goal >= 80%: "
            f"{_verdict(settled >= 0.8)}); slowed {SLOWDOWN:g}x, it got "
            f"{s.after[:20].count(s.slowed)} of the next 20 calls and "
            f"{s.after.count(s.slowed)} of {len(s.after)}; "
            + (
                f"moved away for good after {moved} calls"
                if moved is not None
                else f"had not moved away for good within {len(s.after)} calls"
            )
            + f" (goal <= 20): {_verdict(moved is not None and moved <= 20)}"
        )
    return "\n".join(out)


# ------------------------------------------------------------------- the CLI


def _scaled(latency: Latency, scale: float) -> Latency:
    return replace(
        latency, ttft=latency.ttft * scale, per_token=latency.per_token * scale
    )


FLAGS: tuple[tuple[str, Any, Any, str], ...] = (
    ("--calls", _positive, 400, "calls per run"),
    ("--concurrency", _positive, 20, "calls in flight from the client"),
    ("--cap", _positive, 20, "emulator's cap per model, and max_in_flight"),
    ("--scale", float, 1.0, "multiply every model's delays"),
    ("--seed", int, 17, "seed of the latency draws"),
    ("--hedge-delay", float, None, "Hedge(delay=...) for the hedged rows"),
    ("--warmup", int, 3, "sequential calls before measuring"),
    ("--call-timeout", float, 30.0, "give up on a call after this"),
    ("--modes", str, "invoke,stream", "invoke, stream or both"),
    ("--contenders", str, None, "comma-separated keys (none: the shift only)"),
    ("--shift-after", int, 200, "calls before and after the slowdown (0: none)"),
)
"""The command line's flags: name, type, default and help."""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, kind, default, text in FLAGS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.set_defaults(contenders=",".join(p.key for p in peers()))
    return parser


async def main_async(args: argparse.Namespace) -> None:
    """Every mode, every contender, the shift, then the tables and the goals."""
    from langchain_wandb_router import Hedge

    started = time.perf_counter()
    args.hedge = True if args.hedge_delay is None else Hedge(delay=args.hedge_delay)
    everyone = peers(args.hedge)
    chosen = [p for p in everyone if p.key in args.contenders.split(",")]
    if any(p.key == "litellm" for p in chosen) and (why := litellm_missing()):
        print(f"Skipping LiteLLM: {why}.", file=sys.stderr)
        chosen = [p for p in chosen if p.key != "litellm"]
    latencies = {m: _scaled(lat, args.scale) for m, lat in LATENCIES.items()}
    emu = TailEmulator(args.cap, latencies, args.seed)
    runs: list[TailRun] = []
    shifts: list[Shift] = []
    try:
        if args.shift_after:
            latency = next(p for p in everyone if p.key == "latency")
            for mode in args.modes.split(","):
                print(f"shift, {mode} ...", file=sys.stderr, flush=True)
                shifts.append(await shift(latency, mode == "stream", emu, args))
        # One contender at a time, both modes; LiteLLM last (see above).
        for peer in sorted(chosen, key=lambda p: p.key == "litellm"):
            for mode in args.modes.split(","):
                print(f"{mode}: {peer.label} ...", file=sys.stderr, flush=True)
                runs.append(await measure(peer, mode == "stream", emu, args))
    finally:
        emu.stop()
    described = ", ".join(
        f"{_short(m)} {lat.ttft * 1e3:.0f} ms"
        + (
            f" ({100 * lat.tail_share:.0f}% x{lat.tail_factor:g})"
            if lat.tail_share
            else ""
        )
        for m, lat in latencies.items()
    )
    print(
        f"{args.calls} calls, {args.concurrency} in flight; time to first token: "
        f"{described}; cap {args.cap} per model (WandbRouter: max_in_flight={args.cap}); "
        f"seed {args.seed}"
    )
    for stream in (False, True):
        mine = [r for r in runs if r.stream == stream]
        if mine:
            print(f"\n### {_mode(stream)}\n\n{table(mine)}\n\n{details(mine)}")
    print(f"\n### Goals\n\n{goals(runs, shifts, args)}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


def main() -> None:
    """Parse the flags and run."""
    asyncio.run(main_async(build_parser().parse_args()))


if __name__ == "__main__":
    main()
