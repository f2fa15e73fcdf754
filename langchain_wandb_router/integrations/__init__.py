"""LangChain and W&B integrations: cost callbacks, Weave prices, ``wandb:`` strings.

Each module loads only when one of its names is used: ``cost`` (callback
handlers), ``_weave`` (``register_weave_costs``), ``_provider``
(``register_provider``, for ``init_chat_model("wandb:…")``).
"""
