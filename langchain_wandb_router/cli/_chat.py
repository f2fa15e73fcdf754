"""``wandb-router chat``: one answer, streamed or as one JSON object.

The prompt comes from the command line, or from stdin (``-``, or no prompt
with stdin piped). ``--router`` routes with a fallback to the default model and
says on stderr when it fell back, so a script reading stdout is not disturbed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from langchain_wandb_router.cli._common import DEFAULT_MODEL, Style

__all__ = ["add_chat_parser", "cmd_chat", "read_prompt"]


def _positive_int(text: str) -> int:
    """The ``--max-tokens`` type: an integer >= 1 (0 would only fail at W&B)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_chat_parser(sub: Any) -> None:
    """Add the ``chat`` subcommand to ``sub`` (argparse's subparsers)."""
    chat = sub.add_parser(
        "chat",
        help="stream an answer",
        description="Stream one answer. PROMPT '-' (or none, with stdin piped) "
        "reads the prompt from stdin.",
    )
    chat.add_argument("prompt", nargs="?", help="the prompt; '-' reads stdin")
    chat.add_argument("--model", default=DEFAULT_MODEL)
    chat.add_argument(
        "--router",
        action="store_true",
        help=f"route with a fallback to {DEFAULT_MODEL}; fallbacks reported on stderr",
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message first")
    chat.add_argument("--temperature", type=float, metavar="X")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N")
    chat.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: text, model, usage, cost, routing",
    )
    chat.add_argument("--project", help="team/project")
    chat.set_defaults(func=cmd_chat)


def read_prompt(arg: str | None, stdin: TextIO) -> str:
    """The prompt: ``arg``, or stdin for ``-`` or for no prompt with stdin piped.

    Args:
        arg: The positional prompt, ``"-"``, or ``None`` when not given.
        stdin: Where a piped prompt is read from.

    Raises:
        argparse.ArgumentError: No prompt given and stdin is a terminal (reading it
            would wait silently for typing), or the prompt is empty.
    """
    if arg is None and stdin.isatty():
        msg = "chat needs a prompt: wandb-router chat 'PROMPT' (or '-' to read stdin)"
        raise argparse.ArgumentError(None, msg)
    # A file's final newline is not part of what the user asks.
    prompt = stdin.read().rstrip("\n") if arg in (None, "-") else arg
    if not prompt or not prompt.strip():
        raise argparse.ArgumentError(None, "the prompt is empty")
    return str(prompt)


def _messages(prompt: str, system: str | None) -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    head: list[Any] = [SystemMessage(system)] if system else []
    return [*head, HumanMessage(prompt)]


def _model(args: argparse.Namespace) -> Any:
    """ChatWandb, or a WandbRouter falling back to the default model."""
    from langchain_wandb_router import ChatWandb, WandbRouter

    # Only what was given: the model's own defaults stand for the rest.
    settings: dict[str, Any] = {
        name: value
        for name, value in (
            ("temperature", args.temperature),
            ("max_tokens", args.max_tokens),
        )
        if value is not None
    }
    if args.router:
        routes = (
            [args.model] if args.model == DEFAULT_MODEL else [args.model, DEFAULT_MODEL]
        )
        return WandbRouter(models=routes, project=args.project, **settings)
    return ChatWandb(model=args.model, project=args.project, **settings)


def _stream_answer(model: Any, messages: list[Any], out: TextIO, style: Style) -> Any:
    """Stream to ``out``, reasoning dimmed (or marked), and return the aggregate."""
    full = None
    thinking = False
    for chunk in model.stream(messages):
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


def _cost(message: Any, model: str | None) -> float | None:
    """USD for the call: what ChatWandb computed, else the catalog's prices."""
    from langchain_wandb_router.integrations.cost import call_cost_usd

    cost = message.response_metadata.get("cost_usd")
    if cost is None and model is not None:
        cost = call_cost_usd(model, message.usage_metadata)
    return float(cost) if cost is not None else None


def _usage_line(message: Any) -> str:
    usage = message.usage_metadata or {}
    model = message.response_metadata.get("model_name")
    cost = _cost(message, model)
    price = f"${cost:.6f}" if cost is not None else "cost unknown"
    return (
        f"[{model or '?'}] {usage.get('input_tokens', 0)} in / "
        f"{usage.get('output_tokens', 0)} out tokens, {price}"
    )


def fallbacks(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The routes given up before the answer, in the order they were tried.

    Retries on the model that answered are not fallbacks; a model retried and
    then given up counts once, with its last error.
    """
    served = record.get("model")
    last: dict[str, Any] = {}
    for attempt in record.get("attempts", []):
        if attempt.get("error") and attempt.get("model") != served:
            last[attempt["model"]] = attempt["error"]
    return [{"model": model, "error": error} for model, error in last.items()]


def _routing(message: Any) -> dict[str, Any] | None:
    """The router's record for ``--json``: who answered, why, what failed first."""
    record = message.response_metadata.get("routing")
    if not isinstance(record, dict):
        return None  # a plain model: nothing was routed
    given_up = fallbacks(record)
    return {
        "model": record.get("model"),
        "reason": record.get("reason"),
        "fell_back": bool(given_up),
        "fallbacks": given_up,
        "attempts": record.get("attempts", []),
        "excluded": record.get("excluded", {}),
    }


def _report_fallbacks(message: Any, err: TextIO) -> None:
    """One stderr line per fallback: which model failed, why, which answered."""
    record = message.response_metadata.get("routing")
    if not isinstance(record, dict):
        return
    for given_up in fallbacks(record):
        err.write(
            f"wandb-router: fell back: {given_up['model']} failed "
            f"({given_up['error']}); {record.get('model')} answered\n"
        )


def _as_json(message: Any) -> dict[str, Any]:
    """The answer as the object ``--json`` prints."""
    meta = message.response_metadata
    model = meta.get("model_name")
    usage = message.usage_metadata
    reasoning = message.additional_kwargs.get("reasoning_content")
    return {
        "text": message.text,
        "reasoning": reasoning or None,
        "model": model,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
        "cost": _cost(message, model),
        "routing": _routing(message),
    }


def cmd_chat(args: argparse.Namespace) -> int:
    """One answer from W&B: streamed with a usage line, or one JSON object."""
    messages = _messages(read_prompt(args.prompt, sys.stdin), args.system)
    model = _model(args)
    if args.json:
        answer = model.invoke(messages)
        _report_fallbacks(answer, sys.stderr)
        print(json.dumps(_as_json(answer), ensure_ascii=False))
        return 0
    style = Style(sys.stdout)
    full = _stream_answer(model, messages, sys.stdout, style)
    if full is not None:
        _report_fallbacks(full, sys.stderr)
        print(style.dim(_usage_line(full)))
    return 0
