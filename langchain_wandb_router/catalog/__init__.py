"""What W&B serves: capabilities, limits, prices and lifecycle of each model.

``models.json`` is the data; ``_models`` reads it and answers look-ups and
lifecycle questions (offline); ``_live`` asks W&B which models it serves now
(through the transport, with an optional disk cache) and marks the catalog;
``_pricing`` turns usage into dollars. A figure no source gives is
:data:`UNKNOWN` (``None`` through the plain attributes), never zero; the source
of every figure is cited in the repository's ``data/catalog-sources.csv``.
"""

from langchain_wandb_router.catalog._live import LiveModels, refresh_models
from langchain_wandb_router.catalog._models import (
    UNKNOWN,
    ModelInfo,
    Pricing,
    ReasoningMode,
    Unknown,
    catalog_date,
    catalog_source,
    get_model_info,
    list_models,
    normalize_model_id,
    register_model,
    strip_prefix,
)

__all__ = [
    "UNKNOWN",
    "LiveModels",
    "ModelInfo",
    "Pricing",
    "ReasoningMode",
    "Unknown",
    "catalog_date",
    "catalog_source",
    "get_model_info",
    "list_models",
    "normalize_model_id",
    "refresh_models",
    "register_model",
    "strip_prefix",
]
