"""The wire to W&B Inference: requests, pools, SSE, retries, the call's deadline.

Below everything but :mod:`langchain_wandb_router.errors`: nothing here knows
about chat models, the catalog or routing. ``_http`` sends requests (once
each) and ``_core`` builds them for each wire; ``_wire`` reads W&B's errors
off the wire and asks the one status -> error table in ``errors``; ``_pools``
holds the connection pools, per base URL and event loop; ``_sse`` decodes
streams; ``_retry`` is the one :class:`RetryPolicy`; ``_deadline`` carries a
call's deadline down to every read; ``_loops`` steps never-suspending
coroutines (the blocking half of every sync/async pair, the state's too);
``_config`` checks keys, URLs, projects and headers before anything is sent.
The layers above import what they use from here.
"""

from langchain_wandb_router.transport._http import (
    Request,
    apost_json,
    astream_events,
    encode_body,
    post_json,
    stream_events,
)
from langchain_wandb_router.transport._pools import (
    AsyncHTTP,
    SyncHTTP,
    async_client,
    sync_client,
)
from langchain_wandb_router.transport._retry import RetryPolicy
from langchain_wandb_router.transport._sse import SSEDecoder
from langchain_wandb_router.transport._wire import (
    error_from_payload,
    error_from_status,
    parse_retry_after,
    unencodable_text_error,
)

__all__ = [
    "AsyncHTTP",
    "Request",
    "RetryPolicy",
    "SSEDecoder",
    "SyncHTTP",
    "apost_json",
    "astream_events",
    "async_client",
    "encode_body",
    "error_from_payload",
    "error_from_status",
    "parse_retry_after",
    "post_json",
    "stream_events",
    "sync_client",
    "unencodable_text_error",
]
