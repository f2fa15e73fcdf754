"""Packaging promises: a cheap import, and no agents extra needed for the core."""

from __future__ import annotations

import subprocess
import sys

from langchain_wandb_router.testing import WandbEmulator


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_import_is_lazy() -> None:
    out = _run(
        "import sys, langchain_wandb_router as p\n"
        "heavy = [m for m in ('langchain_openai', 'httpx', 'langchain_core', 'openai') if m in sys.modules]\n"
        "print(heavy)\n"
        "p.ChatWandb\n"
        "print('langchain_openai' in sys.modules)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "True"]


def test_core_works_without_langchain_or_langgraph(emulator: WandbEmulator) -> None:
    out = _run(
        "import sys\n"
        "for name in ('langchain', 'langgraph'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        "from langchain_wandb_router import WandbRouter\n"
        f"r = WandbRouter(models=lambda ctx: 'wandb/Qwen/Qwen3-235B-A22B-Instruct-2507', api_key={emulator.api_key!r}, base_url={emulator.base_url!r})\n"
        "print(r.invoke('hi').response_metadata['model_name'])\n"
        "try:\n"
        "    import langchain_wandb_router.middleware\n"
        "except ImportError as exc:\n"
        "    print('middleware:', exc)\n"
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Qwen/Qwen3-235B-A22B-Instruct-2507"
    assert "langchain-wandb-router[agents]" in lines[1]
