"""The ``wandb-router`` command: ``models``, ``chat`` and ``demo``.

This module is the entry point (``wandb-router = "langchain_wandb_router.cli:main"``):
the argument parser, ``--version`` and the error handling. ``_models`` holds the
``models`` command, ``_chat`` the ``chat`` command, ``_demo`` the ``demo`` tour,
``_errors`` the package's errors in CLI words and ``_common`` what the commands
share (the default model, terminal styling).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from langchain_wandb_router.cli._chat import add_chat_parser, cmd_chat
from langchain_wandb_router.cli._common import DEFAULT_MODEL
from langchain_wandb_router.cli._demo import cmd_demo
from langchain_wandb_router.cli._models import cmd_models

__all__ = ["DEFAULT_MODEL", "cmd_chat", "cmd_demo", "cmd_models", "main"]

DISTRIBUTION = "langchain-wandb-router"
"""The name the package is installed under (what ``--version`` looks up)."""


def version() -> str:
    """The installed version, or the source tree's when run uninstalled."""
    from importlib.metadata import PackageNotFoundError, version as installed_version

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:
        from langchain_wandb_router import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wandb-router",
        description="W&B Inference from the command line (env: WANDB_API_KEY, "
        "WANDB_INFERENCE_BASE_URL, WANDB_INFERENCE_PROJECT).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = sub.add_parser("models", help="list the model catalog")
    models.add_argument("--all", action="store_true", help="include retired models")
    models.add_argument(
        "--live", action="store_true", help="merge W&B's /v1/models (needs a key)"
    )
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--project", help="team/project")
    models.set_defaults(func=cmd_models)
    add_chat_parser(sub)
    demo = sub.add_parser(
        "demo", help="a tour (offline on the bundled emulator without a key)"
    )
    demo.add_argument("--project", help="team/project")
    demo.set_defaults(func=cmd_demo)
    return parser


def _parse(argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when argparse is done already.

    argparse exits by itself for ``--help``, ``--version`` and usage errors;
    its code is returned instead, so ``main([...])`` always returns.
    """
    parser = _parser()
    if not argv:
        # Nothing asked: show what can be asked. Help was wanted, so success.
        parser.print_help()
        return 0
    try:
        return parser.parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 2


def _error(exc: BaseException) -> None:
    """Print ``exc`` in CLI words, then the notes it carries (router attempts)."""
    from langchain_wandb_router.cli._errors import cli_message

    print(f"wandb-router: error: {cli_message(exc)}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):
        print(f"wandb-router: {note}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: errors print one line (plus attempts) and exit non-zero.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when W&B or the package refused, 2 for a usage error,
        130 when interrupted.
    """
    from langchain_wandb_router.errors import WandbError

    parsed = _parse(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, int):
        return parsed
    func: Callable[[argparse.Namespace], int] = parsed.func
    try:
        return func(parsed)
    except argparse.ArgumentError as exc:  # a usage error found after parsing
        print(f"wandb-router {parsed.command}: error: {exc}", file=sys.stderr)
        return 2
    except WandbError as exc:
        _error(exc)
        return 1
    except (ValueError, TypeError) as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `wandb-router models | head`
        sys.stderr.close()
        return 0
