"""LangChain and W&B integrations: cost, Weave prices, ``wandb:`` strings, decisions.

Each module loads only when one of its names is used: ``cost`` (callback
handlers), ``_weave`` (``register_weave_costs``), ``_provider``
(``register_provider``, for ``init_chat_model("wandb:…")``), ``_decisions``
(``WandbDecisions``) and ``_decision_selector`` (``DecisionSelector``), the
last two on langchain-core releases with ``langchain_core.decisions``.
"""
