"""Run the emulator in the foreground: ``python -m langchain_wandb_router.testing``.

Prints the base URL and the key on one line each, then serves until killed.
Benchmarks use this to keep the server's CPU out of the client's process, and
load tests give it W&B's behaviour under pressure with flags such as
``--concurrency-limit 8 --model-concurrency-limit zai-org/GLM-5.2=1
--service-time 0.2``, and latency benchmarks seeded model timings with
``--latency '*=0.3,0.01,0.05,10' --seed 7``, and cache tests the prefix cache
with ``--cache-ttl 60 --cache-block 16 --cache-model '*'`` or
``--no-prefix-cache`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from langchain_wandb_router.testing import CacheSettings, Latency, WandbEmulator
from langchain_wandb_router.testing._cache import (
    DEFAULT_BLOCK,
    DEFAULT_CAPACITY,
    DEFAULT_TTL,
)

_N = TypeVar("_N", int, float)


def _per_model(kind: Callable[[str], _N]) -> Callable[[str], tuple[str, _N]]:
    """An argparse type for ``MODEL=VALUE`` (model ids may contain ``/`` and ``:``)."""

    def parse(text: str) -> tuple[str, _N]:
        model, sep, value = text.rpartition("=")
        if not sep or not model:
            raise argparse.ArgumentTypeError(f"expected MODEL=VALUE, got {text!r}")
        try:
            return model, kind(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad value in {text!r}") from exc

    return parse


def latency_value(text: str) -> Latency:
    """``TTFT[,PER_TOKEN[,TAIL_SHARE[,TAIL_FACTOR[,JITTER]]]]`` as a :class:`Latency`.

    Raises:
        ValueError: Not one to five numbers, or numbers a Latency refuses.
    """
    figures = [float(part) for part in text.split(",")]
    if not 1 <= len(figures) <= 5:
        raise ValueError(f"expected one to five numbers, got {text!r}")
    return Latency(*figures)


def _add_load_flags(
    parser: argparse.ArgumentParser,
    name: str,
    kind: Callable[[str], _N],
    default: _N | None,
    unit: str,
    help_all: str,
    help_model: str,
) -> None:
    """Add ``--NAME`` (every model) and ``--model-NAME MODEL=VALUE`` (repeatable)."""
    parser.add_argument(
        f"--{name}", type=kind, default=default, metavar=unit, help=help_all
    )
    parser.add_argument(
        f"--model-{name}",
        type=_per_model(kind),
        action="append",
        default=[],
        metavar=f"MODEL={unit}",
        help=help_model,
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: port, reply size, and load behaviour."""
    parser = argparse.ArgumentParser(prog="python -m langchain_wandb_router.testing")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--reply-words",
        type=int,
        default=0,
        help="answer every request with this many words (streams: one chunk each)",
    )
    _add_load_flags(
        parser,
        "concurrency-limit",
        int,
        None,
        "N",
        "most chat requests in flight per (project, model); more get W&B's 429",
        "a cap for one model id (repeatable); overrides --concurrency-limit",
    )
    _add_load_flags(
        parser,
        "service-time",
        float,
        0.0,
        "SECONDS",
        "hold each chat request this long (in flight) before replying",
        "a service time for one model id (repeatable)",
    )
    parser.add_argument(
        "--latency",
        type=_per_model(latency_value),
        action="append",
        default=[],
        metavar="MODEL=TTFT[,PER_TOKEN[,TAIL_SHARE[,TAIL_FACTOR[,JITTER]]]]",
        help="seconds to first token and per token, share of requests in the "
        "heavy tail and how much slower they are, relative spread; MODEL '*' "
        "for every model not named (repeatable)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latency draws (same seed, same delays)",
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="send Retry-After on concurrency 429s (W&B documents none)",
    )
    _add_cache_flags(parser)
    return parser


def _add_cache_flags(parser: argparse.ArgumentParser) -> None:
    """Add the prefix cache's flags: on/off, TTL, block, capacity, models."""
    parser.add_argument(
        "--prefix-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cache prompt prefixes and report usage.prompt_tokens_details."
        "cached_tokens (default: on)",
    )
    parser.add_argument(
        "--cache-ttl",
        type=float,
        default=DEFAULT_TTL,
        metavar="SECONDS",
        help="how long a cached block lives unused",
    )
    parser.add_argument(
        "--cache-block",
        type=int,
        default=DEFAULT_BLOCK,
        metavar="TOKENS",
        help="tokens per cache block; reuse is reported in whole blocks",
    )
    parser.add_argument(
        "--cache-capacity",
        type=int,
        default=DEFAULT_CAPACITY,
        metavar="BLOCKS",
        help="most blocks cached per model, least recently used dropped first",
    )
    parser.add_argument(
        "--cache-model",
        action="append",
        default=None,
        metavar="MODEL",
        help="a model that caches ('*': every model; repeatable); default: the "
        "models with a cache-read price",
    )


def emulator_from_args(args: argparse.Namespace) -> WandbEmulator:
    """An emulator (not started) configured from parsed command-line flags.

    Args:
        args: What :func:`build_parser` parsed.

    Returns:
        The emulator, with caps, service times, latencies, replies and the
        prefix cache set.
    """
    caps: dict[str, int] = dict(args.model_concurrency_limit)
    if args.concurrency_limit is not None:
        caps["*"] = args.concurrency_limit
    service: dict[str, float] = dict(args.model_service_time)
    service["*"] = args.service_time
    emu = WandbEmulator(
        port=args.port,
        concurrency_limit=caps or None,
        service_time=service,
        rate_limit_retry_after=args.retry_after,
        latency=dict(args.latency) or None,
        latency_seed=args.seed,
        prefix_cache=CacheSettings(
            args.prefix_cache,
            args.cache_ttl,
            args.cache_block,
            args.cache_capacity,
            None if args.cache_model is None else frozenset(args.cache_model),
        ),
    )
    if args.reply_words:
        words = " ".join(f"word{i}" for i in range(args.reply_words))
        emu.respond_with(content=words, times=None)
    return emu


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the flags and serve until interrupted.

    Args:
        argv: The arguments; ``sys.argv[1:]`` by default.
    """
    args = build_parser().parse_args(argv)
    with emulator_from_args(args) as emu:
        sys.stdout.write(f"{emu.base_url}\n{emu.api_key}\n")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
