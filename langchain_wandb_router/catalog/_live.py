"""The live refresh: which models W&B serves now, asked of ``GET /v1/models``.

:func:`refresh_models` (never called at import time) asks W&B, or reads a
fresh enough answer from an optional JSON cache on disk, and marks the catalog
through :func:`~langchain_wandb_router.catalog._models.mark_live`;
:class:`LiveModels` is its answer. The network client (httpx, the transport's
key and URL checks) is imported only when a refresh runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from langchain_wandb_router.catalog._models import list_models, mark_live

__all__ = ["LiveModels", "refresh_models"]


@dataclass(frozen=True)
class LiveModels:
    """What ``GET /v1/models`` said, against the catalog.

    The three id lists are empty when the answer is unknown.

    Attributes:
        ids: Ids W&B listed (empty when the answer was empty).
        known: ``False`` when W&B listed nothing — W&B once served an empty list
            by mistake, so that means "unknown", not "everything retired".
        new_ids: Live ids the catalog lacks altogether (add them to it).
        missing_ids: Catalog models (not retired) that W&B no longer lists.
        from_cache: Whether the answer came from the on-disk cache.
        listed_but_retired: Live ids the catalog has as retired (its dates
            are wrong, or W&B still answers for a retired id).
    """

    ids: tuple[str, ...]
    known: bool
    new_ids: tuple[str, ...]
    missing_ids: tuple[str, ...]
    from_cache: bool = False
    listed_but_retired: tuple[str, ...] = ()

    @property
    def not_in_catalog(self) -> tuple[str, ...]:
        """Models W&B serves that the catalog lacks (``new_ids``)."""
        return self.new_ids

    @property
    def not_served(self) -> tuple[str, ...]:
        """Catalog models W&B no longer serves (``missing_ids``)."""
        return self.missing_ids


def refresh_models(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    project: str | None = None,
    timeout: float = 10.0,
    cache_path: str | None = None,
    max_age_seconds: float = 3600.0,
) -> LiveModels:
    """Ask W&B which models it serves now and mark the catalog.

    Never called at import time. With ``cache_path``, a fresh enough answer is
    read from disk instead of the network, and a new answer is written there.

    Args:
        api_key: Defaults to ``WANDB_API_KEY``.
        base_url: Defaults to ``WANDB_INFERENCE_BASE_URL`` or W&B's endpoint.
        project: ``team/project`` (defaults as for ChatWandb).
        timeout: Seconds for the request.
        cache_path: Optional JSON file to cache the answer in.
        max_age_seconds: How old a cached answer may be.

    Raises:
        WandbError: A typed error when W&B refuses or cannot be reached.
    """
    from langchain_wandb_router.transport import _config

    url = _config.resolve_base_url(base_url) + "/models"
    ids = _read_cache(cache_path, url, max_age_seconds) if cache_path else None
    from_cache = ids is not None
    if ids is None:
        ids = _fetch_ids(url, api_key, project, timeout)
        if cache_path:
            _write_cache(cache_path, url, ids)
    known = bool(ids)
    live = set(ids)
    mark_live(live if known else None)
    if not known:
        return LiveModels(
            ids=(), known=False, new_ids=(), missing_ids=(), from_cache=from_cache
        )
    everything = {m.id for m in list_models(include_retired=True)}
    serving = {m.id for m in list_models()}
    return LiveModels(
        ids=tuple(ids),
        known=True,
        # A retired model still listed is not "new": it is reported apart.
        new_ids=tuple(sorted(live - everything)),
        missing_ids=tuple(sorted(serving - live)),
        from_cache=from_cache,
        listed_but_retired=tuple(sorted(live & (everything - serving))),
    )


def _read_cache(cache_path: str, url: str, max_age_seconds: float) -> list[str] | None:
    """The cached ids for ``url`` if no older than ``max_age_seconds``, else None."""
    import time
    from pathlib import Path

    try:
        cached = json.loads(Path(cache_path).read_text(encoding="utf-8"))
        if (
            cached.get("url") == url
            and time.time() - float(cached.get("fetched_at", 0)) <= max_age_seconds
        ):
            return [str(i) for i in cached["ids"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _write_cache(cache_path: str, url: str, ids: list[str]) -> None:
    import time
    from pathlib import Path

    payload = {"url": url, "fetched_at": time.time(), "ids": ids}
    Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
    Path(cache_path).write_text(json.dumps(payload), encoding="utf-8")


def _fetch_ids(
    url: str, api_key: str | None, project: str | None, timeout: float
) -> list[str]:
    """The ids ``GET /v1/models`` lists; typed errors when it cannot say."""
    import os

    import httpx

    from langchain_wandb_router import errors, transport as _transport
    from langchain_wandb_router.transport import _config

    key = api_key or os.environ.get(_config.API_KEY_ENV)
    if not key:
        raise _config.missing_key_error()
    headers = {"Authorization": f"Bearer {_config.check_api_key(key)}"}
    resolved_project = _config.resolve_project(project)
    if resolved_project:
        headers["OpenAI-Project"] = resolved_project
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise errors.WandbTimeoutError(
            f"W&B did not list models in {timeout}s."
        ) from exc
    except httpx.HTTPError as exc:
        msg = f"Could not reach W&B to list models: {type(exc).__name__}."
        raise errors.WandbConnectionError(msg) from exc
    if resp.status_code >= 300:
        raise _transport.error_from_status(
            resp.status_code, resp.content, resp.headers, "models"
        )
    try:
        data = resp.json().get("data") or []
        return [
            str(item["id"]) for item in data if isinstance(item, dict) and "id" in item
        ]
    except (ValueError, AttributeError) as exc:
        msg = "W&B's model list was not valid JSON."
        raise errors.WandbAPIError(msg) from exc
