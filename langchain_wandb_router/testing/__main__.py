"""Run the emulator in the foreground: ``python -m langchain_wandb_router.testing``.

Prints the base URL and the key on one line each, then serves until killed.
Benchmarks use this to keep the server's CPU out of the client's process.
"""

from __future__ import annotations

import argparse
import sys
import time

from langchain_wandb_router.testing import WandbEmulator


def main() -> None:
    """Parse ``--port`` and serve."""
    parser = argparse.ArgumentParser(prog="python -m langchain_wandb_router.testing")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--reply-words",
        type=int,
        default=0,
        help="answer every request with this many words (streams: one chunk each)",
    )
    args = parser.parse_args()
    with WandbEmulator(port=args.port) as emu:
        if args.reply_words:
            words = " ".join(f"word{i}" for i in range(args.reply_words))
            emu.respond_with(content=words, times=None)
        sys.stdout.write(f"{emu.base_url}\n{emu.api_key}\n")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
