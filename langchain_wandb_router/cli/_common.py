"""What the ``wandb-router`` commands share: the default model, terminal styling."""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["DEFAULT_MODEL", "Style"]

DEFAULT_MODEL = "wandb/Qwen/Qwen3-235B-A22B-Instruct-2507"


class Style:
    """ANSI styling only when writing to a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.on = stream.isatty() and os.environ.get("NO_COLOR") is None

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)
