"""ChatWandb: the LangChain chat model for W&B Inference.

``_model`` is the public class (usage guide, identity, profile), built in
layers: ``_settings`` (fields and validators), ``_params`` (parameters and
payloads, cached per configuration) and ``_calls`` (the call hooks: requests,
retries, results, streams). ``_payload`` builds request payloads, ``_chunks``
shapes results and stream chunks, ``_fields`` says which inherited fields are
honoured or refused, ``_structured`` serves structured output (also for the
router), ``_tokens`` estimates tokens offline, and ``_fast_messages`` /
``_fast_chunks`` are converters equal to langchain-openai's, only faster.
"""

from langchain_wandb_router.chat._model import ChatWandb

__all__ = ["ChatWandb"]
