"""Where ``ChatWandb`` was first published; kept because paths point here.

Serialized ChatWandb objects name this module (their LangChain id is
``["langchain_wandb_router", "chat_models", "ChatWandb"]`` resolved through
it), and LangChain's provider table (``register_provider``) imports it.
"""

from langchain_wandb_router.chat._model import ChatWandb

__all__ = ["ChatWandb"]
