"""What W&B serves: capabilities, limits, prices and lifecycle of each model.

``models.json`` is the data; ``_models`` reads it, answers look-ups and asks
W&B which models are live (through the transport); ``_pricing`` turns usage
into dollars.
"""

from langchain_wandb_router.catalog._models import (
    LiveModels,
    ModelInfo,
    Pricing,
    ReasoningMode,
    catalog_date,
    get_model_info,
    list_models,
    normalize_model_id,
    refresh_models,
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
