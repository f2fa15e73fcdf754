"""``python -m langchain_wandb_router.cli``: the ``wandb-router`` command."""

import sys

from langchain_wandb_router.cli import main

if __name__ == "__main__":
    sys.exit(main())
