"""The ``wandb-router`` command: ``models``, ``chat`` and ``demo``.

This module is the entry point (``wandb-router = "langchain_wandb_router.cli:main"``):
the argument parser, the error handling and the ``chat`` command.
``_models`` holds the ``models`` command, ``_demo`` the ``demo`` tour,
``_common`` what the commands share (the default model, terminal styling).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from langchain_wandb_router.cli._common import DEFAULT_MODEL, Style
from langchain_wandb_router.cli._demo import cmd_demo
from langchain_wandb_router.cli._models import cmd_models

__all__ = ["DEFAULT_MODEL", "cmd_chat", "cmd_demo", "cmd_models", "main"]


def _stream_answer(
    model: Any,
    prompt: Any,
    out: TextIO,
    style: Style,
    config: dict[str, Any] | None = None,
) -> Any:
    """Stream to ``out``, reasoning dimmed (or marked), and return the aggregate."""
    full = None
    thinking = False
    for chunk in model.stream(prompt, config=config):
        reasoning = chunk.additional_kwargs.get("reasoning_content")
        if reasoning:
            if not thinking:
                out.write(style.dim("[thinking] ") if style.on else "[thinking] ")
                thinking = True
            out.write(style.dim(reasoning))
        if chunk.text:
            if thinking:
                out.write("\n" if style.on else "\n[answer] ")
                thinking = False
            out.write(chunk.text)
        out.flush()
        full = chunk if full is None else full + chunk
    out.write("\n")
    return full


def _usage_line(message: Any) -> str:
    usage = message.usage_metadata or {}
    meta = message.response_metadata
    cost = meta.get("cost_usd")
    price = f"${cost:.6f}" if cost is not None else "cost unknown"
    return (
        f"[{meta.get('model_name', '?')}] {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out tokens, {price}"
    )


def cmd_chat(args: argparse.Namespace) -> int:
    """Stream one answer from W&B."""
    from langchain_wandb_router import ChatWandb, WandbRouter

    style = Style(sys.stdout)
    model: Any
    if args.router:
        routes = (
            [args.model] if args.model == DEFAULT_MODEL else [args.model, DEFAULT_MODEL]
        )
        model = WandbRouter(models=routes, project=args.project)
    else:
        model = ChatWandb(model=args.model, project=args.project)  # type: ignore[call-arg]
    full = _stream_answer(model, args.prompt, sys.stdout, style)
    if full is not None:
        print(style.dim(_usage_line(full)))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wandb-router",
        description="W&B Inference from the command line (env: WANDB_API_KEY, "
        "WANDB_INFERENCE_BASE_URL, WANDB_INFERENCE_PROJECT).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list the model catalog")
    models.add_argument("--all", action="store_true", help="include retired models")
    models.add_argument(
        "--live", action="store_true", help="merge W&B's /v1/models (needs a key)"
    )
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--project", help="team/project")
    models.set_defaults(func=cmd_models)
    chat = sub.add_parser("chat", help="stream an answer")
    chat.add_argument("prompt")
    chat.add_argument("--model", default=DEFAULT_MODEL)
    chat.add_argument(
        "--router",
        action="store_true",
        help=f"route with a fallback to {DEFAULT_MODEL}",
    )
    chat.add_argument("--project", help="team/project")
    chat.set_defaults(func=cmd_chat)
    demo = sub.add_parser(
        "demo", help="a tour (offline on the bundled emulator without a key)"
    )
    demo.add_argument("--project", help="team/project")
    demo.set_defaults(func=cmd_demo)
    return parser


def _one_line(exc: Exception) -> str:
    """The useful part of an error: pydantic's own messages, not its header."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: errors print one line and exit non-zero, no traceback."""
    from langchain_wandb_router.errors import WandbError

    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except WandbError as exc:
        print(f"wandb-router: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"wandb-router: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `wandb-router models | head`
        sys.stderr.close()
        return 0
