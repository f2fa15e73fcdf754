"""The wire to W&B Inference: requests, pools, SSE, retries, the call's deadline.

Below everything but :mod:`langchain_wandb_router.errors`: nothing here knows
about chat models, the catalog or routing. ``_http`` builds and sends requests
(once each) and reads W&B's errors off the wire; ``_pools`` holds the
connection pools, per base URL and event loop; ``_sse`` decodes streams;
``_retry`` is the one :class:`RetryPolicy`; ``_deadline`` carries a call's
deadline down to every read; ``_config`` checks keys, URLs, projects and
headers before anything is sent.
"""

from langchain_wandb_router.transport._retry import RetryPolicy

__all__ = ["RetryPolicy"]
