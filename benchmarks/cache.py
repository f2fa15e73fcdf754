"""Prompt-cache affinity and decision routing: what they save, against the W&B emulator.

The emulator runs in another process (``tail.TailEmulator``: its CPU is not the
client's), every model with the same seeded latency (``--ttft`` to the first
token, ``--per-token`` per token, a lognormal ``--jitter``) and no cap in
reach, and its prefix cache as W&B's (``testing/_cache.py``: per model and
``cache_salt``, 16-token blocks, only on models with a cache-read price). It is
reset (counters and cache emptied) before every run.

**Affinity.** ``--conversations`` (50) conversations of ``--turns`` (8) turns
each, ``--in-flight`` (20) of them going on at once, each turn one
``ainvoke`` of the whole history: a system prompt holding a document of its
own (``--doc-tokens``, about 1,500 of the emulator's tokens, different from the
first block on), the user's questions and every answer so far. Between turns
the user thinks (exponential, mean ``--think``, 0.1 s, seeded): without it a
turn is sent the moment its previous one frees a slot, and ``least_busy``
finds that very route the least busy, so it rarely moves a conversation at
all. Three models with a cache-read price, equivalent for the task:
``deepseek-ai/DeepSeek-V4-Flash``, ``moonshotai/Kimi-K2.6`` and
``zai-org/GLM-5.2``. Runs, each with a fresh router:

- ``strategy="least_busy"``, ``affinity=False``: every turn goes where the
  fewest calls are in flight;
- ``least_busy`` with affinity (the default), the conversation known by its
  system prompt and first user message (no ids passed);
- the same with LangGraph's ``configurable.thread_id``;
- ``strategy="cost"`` with affinity.

Reported from the answers' usage and ``response_metadata``: where the turns
went, how many later turns stayed on the previous turn's model, the cached
share of prompt tokens (sum of ``input_token_details.cache_read`` over sum of
``input_tokens``), the cached share of the **repeated-prefix tokens** (turns
2..8 only: each such turn's prompt opens with the whole previous prompt, so its
repeated-prefix tokens are the previous turn's ``input_tokens``; the share is
their cached tokens over those), and the cost per conversation (sum of
``cost_usd``), next to what the same tokens cost without cache reads.
Reuse is reported in whole 16-token blocks and never the prompt's last token,
so a perfect run stays a little under 100%.

**Decision routing.** ``--prompts`` (50) easy and as many hard single-turn
prompts, ``--in-flight`` at a time, through
``WandbRouter(models=DecisionSelector(...).acall)`` with a cheap
(``openai/gpt-oss-20b``) and a strong (``zai-org/GLM-5.1``) choice, decided
by ``WandbDecisions`` on ``openai/gpt-oss-20b`` (threshold 0.6, default
"strong"), against always-strong and always-cheap routers. The emulator
decides deterministically: the choice whose label and criteria share most
words (four letters or more) with the prompt. The criteria and prompts are
written so that rule sends easy prompts to "cheap" and hard ones to "strong":
this shows the plumbing and the cost accounting, not the quality of a
decision. The decisions' own cost is what ``get_wandb_cost_callback`` counted
beyond the answers' ``cost_usd``; the decision requests are counted at the
emulator. The emulator's answers are as long whichever model writes them.

    .venv/bin/python benchmarks/cache.py            # about 30 s on 2 shared cores
    .venv/bin/python benchmarks/cache.py --scenarios affinity --conversations 10
    .venv/bin/python benchmarks/cache.py --scenarios decisions --prompts 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from load import Outcome, _positive, fire
from tail import TailEmulator, _short

from langchain_wandb_router.testing import Latency

MODELS = (
    "deepseek-ai/DeepSeek-V4-Flash",
    "moonshotai/Kimi-K2.6",
    "zai-org/GLM-5.2",
)
"""The affinity scenario's routes, in the user's order."""

CHEAP, STRONG, DECIDER = "openai/gpt-oss-20b", "zai-org/GLM-5.1", "openai/gpt-oss-20b"
"""The decision scenario's choices and the model that decides."""

CRITERIA = {
    "cheap": "Short, simple factual questions: a capital city, a spelling, "
    "a unit conversion.",
    "strong": "Hard multi-step reasoning: prove a theorem, debug code, design a system.",
}
"""What each choice is for (the emulator matches these words with the prompt)."""

THRESHOLD = 0.6
"""The least confidence that picks a label; under it, "strong" serves."""

CAP = 1000
"""The emulator's cap per model: out of reach, so no run sees a 429."""

_SYLLABLES = ("ka", "lo", "ri", "mu", "te", "san", "vor", "nil", "pe", "dra")
"""What the documents' made-up words are made of."""


# ------------------------------------------------------------ the inputs


def document(conversation: int, tokens: int, seed: int) -> str:
    """The system prompt of one conversation: its own document, ~``tokens`` long.

    It opens with the conversation's number, so no two conversations share
    even a first cache block (the emulator's tokens are four characters).
    """
    rng = random.Random(f"{seed}-doc-{conversation}")
    words: list[str] = []
    length = 0
    while length < 4 * tokens:
        words.append(_word(rng))
        length += len(words[-1]) + 1
    return (f"Document {conversation:04d} (answer from it alone). " + " ".join(words))[
        : 4 * tokens
    ]


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4)))


def question(conversation: int, turn: int, seed: int) -> str:
    """The user's message of one turn."""
    rng = random.Random(f"{seed}-q-{conversation}-{turn}")
    a, b = _word(rng), _word(rng)
    return f"Turn {turn}: where does the document mention {a} near {b}?"


EASY = (
    "Short question: what is the capital city of {thing}?",
    "Simple spelling question: how do you spell {thing}?",
    "Quick unit conversion: how many kilometres are {n} miles?",
)
HARD = (
    "Prove the theorem that {n} is a sum of four squares, reasoning step by step.",
    "Debug this code and explain each step: def area(r): return {n} * r ** 2 / 0",
    "Design a system that tracks {thing} shipments; weigh the trade-offs in steps.",
)
_THINGS = ("Peru", "Norway", "Kenya", "Vietnam", "Chile", "Ghana", "Nepal", "Oman")


def prompts(each: int, seed: int) -> list[tuple[str, str]]:
    """``each`` easy and ``each`` hard prompts, shuffled: ``(intended, text)``.

    Each is numbered, so no two open alike: ``DecisionSelector`` keeps one
    decision per conversation, and a repeated opening is the same one.
    """
    rng = random.Random(f"{seed}-prompts")
    made = [
        (
            label,
            rng.choice(kinds).format(thing=rng.choice(_THINGS), n=rng.randint(2, 99)),
        )
        for label, kinds in (("cheap", EASY), ("strong", HARD))
        for _ in range(each)
    ]
    rng.shuffle(made)
    return [(label, f"Ticket {k}: {text}") for k, (label, text) in enumerate(made)]


# ---------------------------------------------------------- the affinity runs


@dataclass(frozen=True)
class Turn:
    """One answer of a conversation, as the client saw it."""

    conversation: int
    turn: int
    model: str
    input_tokens: int
    cached: int
    output_tokens: int
    cost: float
    reason: str

    def uncached_cost(self) -> float:
        """What the same tokens cost at the model's list price, no cache reads."""
        from langchain_wandb_router.catalog import get_model_info

        info = get_model_info(self.model)
        if info is None or not info.pricing.known:
            raise ValueError(f"no price for {self.model!r}")
        price_in, price_out = info.pricing.input or 0.0, info.pricing.output or 0.0
        return (self.input_tokens * price_in + self.output_tokens * price_out) / 1e6


@dataclass(frozen=True)
class Variant:
    """One affinity run's router settings."""

    label: str
    strategy: str
    affinity: bool
    thread_id: bool = False


VARIANTS = (
    Variant('`"least_busy"`, `affinity=False`', "least_busy", False),
    Variant('`"least_busy"`, affinity (prompt hash)', "least_busy", True),
    Variant('`"least_busy"`, affinity (`thread_id`)', "least_busy", True, True),
    Variant('`"cost"`, affinity (prompt hash)', "cost", True),
)


def _turn(conversation: int, turn: int, reply: Any) -> Turn:
    usage = reply.usage_metadata or {}
    details = usage.get("input_token_details") or {}
    meta = reply.response_metadata
    return Turn(
        conversation,
        turn,
        str(meta.get("model_name", "")),
        int(usage.get("input_tokens", 0)),
        int(details.get("cache_read") or 0),
        int(usage.get("output_tokens", 0)),
        float(meta.get("cost_usd") or 0.0),
        str((meta.get("routing") or {}).get("reason", "")),
    )


def _one_each(items: Sequence[Any]) -> Callable[[], Any]:
    """Hand out ``items`` in order, one per call (``load.fire`` gives prompts only)."""
    left: Iterator[Any] = iter(items)
    return lambda: next(left)


@dataclass
class AffinityRun:
    """Every turn of one run, and the calls that failed."""

    variant: Variant
    wall: float
    turns: list[Turn]
    outcomes: list[Outcome]

    def served(self) -> Counter[str]:
        """Turns per serving model."""
        return Counter(t.model for t in self.turns)

    def _by_conversation(self) -> dict[int, list[Turn]]:
        grouped: dict[int, list[Turn]] = defaultdict(list)
        for t in self.turns:
            grouped[t.conversation].append(t)
        return {c: sorted(ts, key=lambda t: t.turn) for c, ts in grouped.items()}

    def pairs(self) -> list[tuple[Turn, Turn]]:
        """Each later turn with its conversation's previous one."""
        return [
            (before, after)
            for turns in self._by_conversation().values()
            for before, after in itertools.pairwise(turns)
        ]

    @property
    def stayed(self) -> float:
        """Share of later turns served by the previous turn's model."""
        pairs = self.pairs()
        return sum(a.model == b.model for a, b in pairs) / max(1, len(pairs))

    @property
    def cached_share(self) -> float:
        """Cached prompt tokens over all prompt tokens."""
        total = sum(t.input_tokens for t in self.turns)
        return sum(t.cached for t in self.turns) / max(1, total)

    @property
    def repeated_share(self) -> float:
        """Cached tokens of turns 2.. over their repeated prefix (the previous prompt)."""
        pairs = self.pairs()
        repeated = sum(before.input_tokens for before, _ in pairs)
        return sum(after.cached for _, after in pairs) / max(1, repeated)

    def per_conversation(self) -> tuple[float, float]:
        """USD per conversation: as billed (``cost_usd``), and without cache reads."""
        n = max(1, len(self._by_conversation()))
        billed = sum(t.cost for t in self.turns)
        return billed / n, sum(t.uncached_cost() for t in self.turns) / n

    @property
    def failed(self) -> int:
        """Conversations that raised before their last turn."""
        return sum(not o.ok for o in self.outcomes)


def _router(models: Any, emu: TailEmulator, **settings: Any) -> Any:
    from langchain_wandb_router import WandbRouter

    return WandbRouter(
        models=models, api_key=emu.api_key, base_url=emu.base_url, **settings
    )


async def _warm_up(call: Callable[[str], Awaitable[object]], times: int) -> None:
    """Sequential calls before measuring (pools, lazy imports)."""
    for i in range(times):
        await call(f"warm-up {i}")


async def affinity_run(
    variant: Variant, emu: TailEmulator, args: argparse.Namespace
) -> AffinityRun:
    """Every conversation through a fresh router, ``--in-flight`` at a time."""
    from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

    router = _router(
        [f"wandb/{m}" for m in MODELS],
        emu,
        strategy=variant.strategy,
        affinity=variant.affinity,
        max_in_flight=args.max_in_flight,
    )
    await _warm_up(router.ainvoke, args.warmup)
    await emu.settle()
    turns: list[Turn] = []
    nxt = _one_each(range(args.conversations))

    async def converse(_prompt: str) -> None:
        i = nxt()
        config: Any = (
            {"configurable": {"thread_id": f"conversation-{i}"}}
            if variant.thread_id
            else None
        )
        think = random.Random(f"{args.seed}-think-{i}")
        messages: list[BaseMessage] = [
            SystemMessage(document(i, args.doc_tokens, args.seed)),
            HumanMessage(question(i, 1, args.seed)),
        ]
        for t in range(1, args.turns + 1):
            reply = await router.ainvoke(messages, config)
            turns.append(_turn(i, t, reply))
            messages += [reply, HumanMessage(question(i, t + 1, args.seed))]
            if t < args.turns and args.think:
                await asyncio.sleep(think.expovariate(1 / args.think))

    wall, outcomes = await fire(
        converse, args.conversations, args.in_flight, args.call_timeout
    )
    return AffinityRun(variant, wall, turns, outcomes)


# --------------------------------------------------------- the decision runs


@dataclass
class DecisionRun:
    """One way of choosing the model, over every prompt."""

    label: str
    calls: int
    served: Counter[str]
    intended: int
    """Prompts served by the model their kind was written for."""
    answers_usd: float
    total_usd: float
    """Everything the cost callback counted (answers and decisions)."""
    requests: int
    """Chat requests the emulator received (answers and decisions)."""
    outcomes: list[Outcome]

    @property
    def decisions_usd(self) -> float:
        """What the decision requests cost."""
        return self.total_usd - self.answers_usd


async def decision_run(
    label: str,
    models: Any,
    emu: TailEmulator,
    args: argparse.Namespace,
) -> DecisionRun:
    """Every prompt through a fresh router on ``models``, ``--in-flight`` at a time."""
    from langchain_wandb_router import get_wandb_cost_callback

    router = _router(models, emu)
    await _warm_up(router.ainvoke, args.warmup)
    await emu.settle()
    made = prompts(args.prompts, args.seed)
    nxt = _one_each(made)
    served: Counter[str] = Counter()
    intended, answers_usd = 0, 0.0

    async def ask(_prompt: str) -> None:
        nonlocal intended, answers_usd
        kind, text = nxt()
        reply = await router.ainvoke(text)
        model = str(reply.response_metadata.get("model_name", ""))
        served[model] += 1
        intended += model == (CHEAP if kind == "cheap" else STRONG)
        answers_usd += float(reply.response_metadata.get("cost_usd") or 0.0)

    with get_wandb_cost_callback() as cost:
        _, outcomes = await fire(ask, len(made), args.in_flight, args.call_timeout)
    requests = int(emu.stats()["requests"])
    return DecisionRun(
        label,
        len(made),
        served,
        intended,
        answers_usd,
        float(cost.total_cost_usd or 0.0),
        requests,
        outcomes,
    )


def selector(emu: TailEmulator) -> Any:
    """The DecisionSelector's async call: cheap or strong, decided on gpt-oss-20b."""
    from langchain_wandb_router import DecisionSelector, WandbDecisions

    decisions = WandbDecisions(
        model=f"wandb/{DECIDER}", api_key=emu.api_key, base_url=emu.base_url
    )
    return DecisionSelector(
        choices={"cheap": f"wandb/{CHEAP}", "strong": f"wandb/{STRONG}"},
        criteria=CRITERIA,
        decisions=decisions,
        threshold=THRESHOLD,
        default="strong",
    ).acall


# ----------------------------------------------------------------- the report


def _usd(value: float) -> str:
    return f"${value:.5f}"


def affinity_table(runs: Sequence[AffinityRun]) -> str:
    """The Markdown table of the affinity runs."""
    names = " / ".join(_short(m) for m in MODELS)
    lines = [
        f"| router | turns on {names} | later turns on the previous turn's model "
        "| cached share of prompt tokens | cached share of repeated-prefix tokens "
        "| $ per conversation | same tokens uncached | saved | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        served = run.served()
        total = max(1, len(run.turns))
        shares = " / ".join(f"{100 * served[m] / total:.0f}%" for m in MODELS)
        billed, uncached = run.per_conversation()
        lines.append(
            f"| {run.variant.label} | {shares} | {100 * run.stayed:.0f}% "
            f"| {100 * run.cached_share:.1f}% | {100 * run.repeated_share:.1f}% "
            f"| {_usd(billed)} | {_usd(uncached)} "
            f"| {100 * (1 - billed / uncached):.0f}% | {run.failed} |"
        )
    return "\n".join(lines)


def affinity_details(runs: Sequence[AffinityRun]) -> str:
    """Wall time, prompt sizes and why the routes were chosen."""
    out = []
    for run in runs:
        reasons = Counter(t.reason.split(":")[0] for t in run.turns)
        sizes = [t.input_tokens for t in run.turns]
        out.append(
            f"- {run.variant.label}: wall {run.wall:.1f} s; {len(run.turns)} turns; "
            f"prompts {min(sizes, default=0)}-{max(sizes, default=0)} tokens; "
            "reasons "
            + ", ".join(f"{name or '-'} {n}" for name, n in reasons.most_common())
        )
    return "\n".join(out)


def decision_table(runs: Sequence[DecisionRun]) -> str:
    """The Markdown table of the decision runs."""
    strong = next((r for r in runs if r.label.startswith("always strong")), None)
    lines = [
        f"| router | to {_short(CHEAP)} / {_short(STRONG)} | as written for "
        "| answers $ | decisions $ | total $ | µ$ per prompt | vs always-strong "
        "| chat requests | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        total = max(1, run.calls)
        versus = (
            f"{100 * run.total_usd / strong.total_usd:.0f}%"
            if strong and strong.total_usd
            else "-"
        )
        lines.append(
            f"| {run.label} | {100 * run.served[CHEAP] / total:.0f}% / "
            f"{100 * run.served[STRONG] / total:.0f}% "
            f"| {100 * run.intended / total:.0f}% | {_usd(run.answers_usd)} "
            f"| {_usd(run.decisions_usd)} | {_usd(run.total_usd)} "
            f"| {1e6 * run.total_usd / total:.2f} | {versus} | {run.requests} "
            f"| {sum(not o.ok for o in run.outcomes)} |"
        )
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def goals(runs: Sequence[AffinityRun]) -> str:
    """The issue's goals, against the affinity runs."""
    by_key = {(r.variant.strategy, r.variant.affinity): r for r in runs}
    off = by_key.get(("least_busy", False))
    out = []
    for run in runs:
        if not run.variant.affinity:
            continue
        share = run.repeated_share
        line = (
            f"- {run.variant.label}: {100 * share:.1f}% of repeated-prefix tokens "
            f"cached (goal >= 90%): {_verdict(share >= 0.9)}"
        )
        if off is not None:
            billed, off_billed = run.per_conversation()[0], off.per_conversation()[0]
            line += (
                f"; {_usd(billed)} per conversation = "
                f"{100 * billed / off_billed:.0f}% of `affinity=False`'s "
                f"{_usd(off_billed)}"
            )
        out.append(line)
    if off is not None:
        out.append(
            f"- {off.variant.label}: {100 * off.repeated_share:.1f}% of "
            "repeated-prefix tokens cached (expected about 1/3)"
        )
    return "\n".join(out)


# ------------------------------------------------------------------- the CLI


FLAGS: tuple[tuple[str, Any, Any, str], ...] = (
    ("--scenarios", str, "affinity,decisions", "affinity, decisions or both"),
    ("--conversations", _positive, 50, "conversations per affinity run"),
    ("--turns", _positive, 8, "turns per conversation"),
    ("--doc-tokens", _positive, 1500, "tokens of each conversation's document"),
    ("--prompts", _positive, 50, "easy prompts, and as many hard ones"),
    ("--in-flight", _positive, 20, "conversations (or prompts) going on at once"),
    ("--think", float, 0.1, "mean seconds a user takes before the next turn"),
    ("--max-in-flight", int, None, "the routers' max_in_flight (default: none)"),
    ("--ttft", float, 0.04, "seconds to first token, every model"),
    ("--per-token", float, 0.002, "seconds per output token"),
    ("--jitter", float, 0.3, "lognormal sigma of the delays"),
    ("--seed", int, 18, "seed of the inputs and the latency draws"),
    ("--warmup", int, 2, "sequential calls before measuring"),
    ("--call-timeout", float, 120.0, "give up on a conversation after this"),
)
"""The command line's flags: name, type, default and help."""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, kind, default, text in FLAGS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    return parser


async def main_async(args: argparse.Namespace) -> None:
    """The chosen scenarios, then their tables."""
    started = time.perf_counter()
    scenarios = args.scenarios.split(",")
    latency = Latency(args.ttft, args.per_token, jitter=args.jitter)
    emu = TailEmulator(CAP, {"*": latency}, args.seed)
    affinity: list[AffinityRun] = []
    decided: list[DecisionRun] = []
    try:
        if "affinity" in scenarios:
            for variant in VARIANTS:
                print(f"affinity: {variant.label} ...", file=sys.stderr, flush=True)
                affinity.append(await affinity_run(variant, emu, args))
        if "decisions" in scenarios:
            contenders = (
                ("`DecisionSelector` (cheap or strong)", selector(emu)),
                (f"always strong ({_short(STRONG)})", [f"wandb/{STRONG}"]),
                (f"always cheap ({_short(CHEAP)})", [f"wandb/{CHEAP}"]),
            )
            for label, models in contenders:
                print(f"decisions: {label} ...", file=sys.stderr, flush=True)
                decided.append(await decision_run(label, models, emu, args))
    finally:
        emu.stop()
    timing = (
        f"every model {args.ttft * 1e3:.0f} ms to first token, "
        f"{args.per_token * 1e3:g} ms per token, jitter {args.jitter:g}; seed {args.seed}"
    )
    if affinity:
        print(
            f"### Affinity: {args.conversations} conversations x {args.turns} turns, "
            f"{args.in_flight} at once; {timing}\n\n{affinity_table(affinity)}\n\n"
            f"{affinity_details(affinity)}\n\n{goals(affinity)}\n"
        )
    if decided:
        print(
            f"### Decision routing: {args.prompts} easy + {args.prompts} hard prompts, "
            f"{args.in_flight} at once; decided by {_short(DECIDER)}, threshold "
            f"{THRESHOLD}, default strong\n\n{decision_table(decided)}"
        )
    print(f"\n(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)


def main() -> None:
    """Parse the flags and run."""
    asyncio.run(main_async(build_parser().parse_args()))


if __name__ == "__main__":
    main()
