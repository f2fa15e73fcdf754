"""The ``wandb-router models`` command: the catalog as a table or JSON.

A figure no source gives prints as "unknown" (never as "?", 0 or blank), and
the catalog's date and source are printed under the table (and sit in every
``--json`` entry, which keeps the list shape older readers expect).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from langchain_wandb_router.catalog._live import LiveModels, refresh_models
from langchain_wandb_router.catalog._models import (
    ModelInfo,
    Unknown,
    catalog_date,
    catalog_source,
    list_models,
)

__all__ = ["cmd_models"]


def _fmt_int(value: int | float | Unknown) -> str:
    return value if isinstance(value, str) else f"{int(value):,}"


def _fmt_price(value: int | float | Unknown) -> str:
    # Three decimals when two would round a real price away (e.g. 0.035).
    if isinstance(value, str):
        return value
    return f"{value:.2f}" if round(value, 2) == value else f"{value:.3f}"


def _fmt_cache(info: ModelInfo) -> str:
    # No separate cache-read price: cached tokens are billed at the input price.
    cache = info.pricing.cache_read
    return "= in" if cache is None else _fmt_price(cache)


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
        "$cache/1M",
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
            _fmt_int(m.figure("context_window")),
            _fmt_int(m.figure("max_output_tokens")),
            _fmt_price(m.figure("input")),
            _fmt_price(m.figure("output")),
            _fmt_cache(m),
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


def _live_notes(result: LiveModels) -> list[str]:
    """What ``--live`` adds under the table: both directions of the comparison."""
    if not result.known:
        return ["W&B listed no models (treated as unknown, not as retired)."]
    return [
        "Served by W&B but not in the catalog: "
        + (", ".join(result.not_in_catalog) or "none"),
        "In the catalog but not served by W&B: "
        + (", ".join(result.not_served) or "none"),
        *(
            [
                "Served by W&B but retired in the catalog: "
                + ", ".join(result.listed_but_retired)
            ]
            if result.listed_but_retired
            else []
        ),
    ]


def _footer() -> str:
    return (
        f"Catalog as of {catalog_date()}; source: {catalog_source()}.\n"
        '"unknown": no source gives the figure; '
        '"= in": cached tokens are billed at the input price.'
    )


def cmd_models(args: argparse.Namespace) -> int:
    """List the catalog, optionally merged with W&B's live list."""
    notes = _live_notes(refresh_models(project=args.project)) if args.live else []
    models = list_models(include_retired=args.all)
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return 0
    print(_table(models, args.live))
    print(f"\n{_footer()}")
    for note in notes:
        print(note)
    return 0
