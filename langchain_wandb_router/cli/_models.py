"""The ``wandb-router models`` command: the catalog as a table or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from langchain_wandb_router.catalog._live import refresh_models
from langchain_wandb_router.catalog._models import ModelInfo, list_models

__all__ = ["cmd_models"]


def _fmt_int(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


def _fmt_price(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "?"


def _lifecycle(info: ModelInfo) -> str:
    status = info.status()
    if status == "active":
        return "active"
    when = info.retirement_date.isoformat() if info.retirement_date else ""
    succ = f" -> {info.successor}" if info.successor else ""
    return f"{status} {when}{succ}".strip()


def _table(models: Sequence[ModelInfo], live: bool) -> str:
    headers = [
        "model",
        "context",
        "max out",
        "$in/1M",
        "$out/1M",
        "tools",
        "vision",
        "reasoning",
        "lifecycle",
    ]
    if live:
        headers.append("live")
    rows = []
    for m in models:
        row = [
            m.id,
            _fmt_int(m.context_window),
            _fmt_int(m.max_output_tokens),
            _fmt_price(m.pricing.input),
            _fmt_price(m.pricing.output),
            "yes" if m.tool_calling else "no",
            "yes" if m.vision else "no",
            m.reasoning,
            _lifecycle(m),
        ]
        if live:
            row.append({True: "yes", False: "no", None: "?"}[m.live])
        rows.append(row)
    widths = [
        max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False))
        for row in rows
    ]
    return "\n".join(lines)


def cmd_models(args: argparse.Namespace) -> int:
    """List the catalog, optionally merged with W&B's live list."""
    note = ""
    if args.live:
        result = refresh_models(project=args.project)
        if not result.known:
            note = "W&B listed no models (treated as unknown, not as retired)."
        elif result.new_ids:
            note = "Live but not in the catalog: " + ", ".join(result.new_ids)
    models = list_models(include_retired=args.all)
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return 0
    print(_table(models, args.live))
    if note:
        print(f"\n{note}")
    return 0
