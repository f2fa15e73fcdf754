"""The package's typed errors said in CLI words: flags and variables, not arguments.

The error classes speak to Python callers ("pass api_key=...",
"project='team/project'"); a shell user sets a variable or a flag instead.
The classes stay as they are; this module rewords what the CLI prints.
"""

from __future__ import annotations

from langchain_wandb_router.errors import MissingAPIKeyError, WandbModelRetiredError

__all__ = ["cli_message", "one_line"]

# Python advice in the package's messages -> the same advice for the command
# line. A phrase a message no longer contains is simply not replaced.
_CLI_WORDS: tuple[tuple[str, str], ...] = (
    ("(project=, WANDB_INFERENCE_PROJECT)", "(--project or WANDB_INFERENCE_PROJECT)"),
    ("project='team/project'", "--project team/project"),
    ("(see max_in_flight)", "(run fewer at once)"),
)


def _missing_key() -> str:
    return (
        "no W&B API key: set the WANDB_API_KEY environment variable "
        "(get a key at https://wandb.ai/authorize); OPENAI_API_KEY is never used."
    )


def _retired(exc: WandbModelRetiredError) -> str:
    """The retirement message, naming the ``--model`` to use instead."""
    text = str(exc)
    if exc.successor is None:
        return text
    quoted = f"'wandb/{exc.successor}'"
    flag = f"--model wandb/{exc.successor}"
    if quoted in text:
        return text.replace(quoted, flag)
    return f"{text} Use {flag}."


def one_line(exc: BaseException) -> str:
    """The useful part of an error: pydantic's own messages, not its header."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def cli_message(exc: BaseException) -> str:
    """What the CLI prints for ``exc``: one line, advice in CLI words.

    Args:
        exc: A package error, or a ValueError/TypeError from validation.

    Returns:
        The message without the ``wandb-router: error:`` prefix. Package
        errors scrub the API key from their own text, so this never holds it.
    """
    if isinstance(exc, MissingAPIKeyError):
        return _missing_key()
    text = _retired(exc) if isinstance(exc, WandbModelRetiredError) else one_line(exc)
    for python_words, cli_words in _CLI_WORDS:
        text = text.replace(python_words, cli_words)
    return text
