"""ChatWandb: the LangChain chat model for W&B Inference.

``_model`` is the class; ``_payload`` builds request payloads, ``_chunks``
shapes results and stream chunks, ``_fields`` says which inherited fields are
honoured or refused, ``_structured`` serves structured output (also for the
router), ``_tokens`` estimates tokens offline, and ``_fast_messages`` /
``_fast_chunks`` are converters equal to langchain-openai's, only faster.
"""

from langchain_wandb_router.chat._model import ChatWandb

__all__ = ["ChatWandb"]
