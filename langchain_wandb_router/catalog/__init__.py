"""What W&B serves: capabilities, limits, prices and lifecycle of each model.

``models.json`` is the data; ``_models`` reads it and answers look-ups and
lifecycle questions (offline); ``_live`` asks W&B which models it serves now
(through the transport, with an optional disk cache) and marks the catalog;
``_pricing`` turns usage into dollars.
"""

from langchain_wandb_router.catalog._live import LiveModels, refresh_models
from langchain_wandb_router.catalog._models import (
    ModelInfo,
    Pricing,
    ReasoningMode,
    catalog_date,
    get_model_info,
    list_models,
    normalize_model_id,
    register_model,
    strip_prefix,
)

__all__ = [
    "LiveModels",
    "ModelInfo",
    "Pricing",
    "ReasoningMode",
    "catalog_date",
    "get_model_info",
    "list_models",
    "normalize_model_id",
    "refresh_models",
    "register_model",
    "strip_prefix",
]
