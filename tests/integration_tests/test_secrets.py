"""Secret hygiene with everything turned up: the key goes to base_url and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumps

from langchain_wandb_router import ChatWandb, RetryPolicy, WandbRouter
from langchain_wandb_router.catalog._live import refresh_models
from langchain_wandb_router.errors import WandbAuthenticationError, WandbError
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
SECRET = "wb-secret-0123456789abcdef0123456789abcdef"


class _Capture(BaseCallbackHandler):
    """Everything a tracer would be handed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, **kwargs: Any
    ) -> None:
        self.seen.append(repr(serialized) + repr(kwargs))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(repr(response) + repr(kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(repr(error) + str(error) + repr(kwargs))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in (
        "langchain_wandb_router",
        "httpx",
        "httpcore",
        "langchain_core",
        "langchain_openai",
    ):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def test_key_appears_nowhere(
    debug_logs: pytest.LogCaptureFixture, retry_policy: RetryPolicy
) -> None:
    seen: list[str] = []
    with WandbEmulator(api_key=SECRET) as emu:
        creds = {
            "api_key": SECRET,
            "base_url": emu.base_url,
            "retry_policy": retry_policy,
        }
        llm = ChatWandb(model=QWEN, **creds)
        router = WandbRouter(models=[QWEN, "deepseek-ai/DeepSeek-V3.1"], **creds)
        capture = _Capture()
        cfg = {"callbacks": [capture]}

        emu.fault(status=503)  # a logged retry
        msgs = [llm.invoke("hi", config=cfg)]
        msgs.append(next(iter(llm.stream("hi", config=cfg))))
        emu.fault(status=503, times=3, model=QWEN)  # a fallback with a routing record
        msgs.append(router.invoke("hi", config=cfg))
        emu.fault(status=401)
        with pytest.raises(WandbAuthenticationError) as auth:
            llm.invoke("hi", config=cfg)
        emu.fault(status=500, times=None)
        with pytest.raises(WandbError) as server:
            router.invoke("hi", config=cfg)
        refresh_models(api_key=SECRET, base_url=emu.base_url)

        for exc in (auth.value, server.value):
            seen += [str(exc), repr(exc), *getattr(exc, "__notes__", [])]
        for m in msgs:
            seen += [repr(m), str(m.response_metadata)]
        seen += [
            repr(llm),
            str(llm),
            repr(router),
            str(router),
            dumps(llm),
            dumps(router),
            str(llm.model_dump()),
            str(router.model_dump()),
        ]
        seen += capture.seen
        seen.append(debug_logs.text)
        # Sanity: the logs really are verbose, and the key really was used.
        assert "send_request_headers.started" in debug_logs.text  # httpcore, DEBUG
        assert "retry 1/2" in debug_logs.text
        assert all(
            r.headers["authorization"] == f"Bearer {SECRET}" for r in emu.requests
        )
    for text in seen:
        assert SECRET not in text


def test_openai_key_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    openai_key = "sk-openai-must-never-leave-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", openai_key)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-must-not-be-sent")
    with WandbEmulator() as emu:
        creds = {"api_key": emu.api_key, "base_url": emu.base_url}
        ChatWandb(model=QWEN, **creds).invoke("hi")
        list(ChatWandb(model=QWEN, **creds).stream("hi"))
        WandbRouter(models=QWEN, **creds).invoke("hi")
        for req in emu.requests:
            blob = repr(req.headers) + repr(req.json)
            assert openai_key not in blob
            assert "org-must-not-be-sent" not in blob
            assert "openai-organization" not in req.headers
            assert req.headers["authorization"] == f"Bearer {emu.api_key}"


def test_missing_key_does_not_fall_back_to_openai_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        ChatWandb(model=QWEN)
    with pytest.raises(WandbAuthenticationError, match="WANDB_API_KEY"):
        WandbRouter(models=QWEN)


# ------------------------------------------------ a server that echoes the key
# W&B (or a gateway in front of it) may quote the credential it was sent. No
# such text reaches an exception (str, repr, args, notes, the cause chain),
# whichever path quotes it: a status error, an error inside a 200 body, an SSE
# error event, a malformed stream line.


def _texts(exc: BaseException) -> list[str]:
    """Everything an exception and its chain would show a user or a log."""
    out: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out += [str(current), repr(current), repr(current.args)]
        out += list(getattr(current, "__notes__", []))
        out += [repr(v) for v in vars(current).values()]
        current = current.__cause__ or current.__context__
    return out


def _assert_clean(exc: BaseException, logs: str = "") -> None:
    # Nor a piece of it left by a cut (messages quote 80 or 300 characters).
    pieces = {SECRET[i : i + 8] for i in range(len(SECRET) - 7)}
    for text in [*_texts(exc), logs]:
        assert SECRET not in text
        assert not [piece for piece in pieces if piece in text]


ECHOES: dict[str, Any] = {
    "openai-shape": {"error": {"message": f"invalid key Bearer {SECRET}"}},
    "error-string": {"error": f"bad credentials: {SECRET}"},
    "detail-string": {"detail": f"Unauthorized key {SECRET}"},
    "detail-list": {"detail": [{"loc": ["header", SECRET], "msg": f"no {SECRET}"}]},
    "message-only": {"message": f"Bearer {SECRET} rejected"},
    "bare-key": SECRET,
    # The key across the 300-character cut of a plain-text body.
    "cut-text": "x" * 290 + f" {SECRET} tail",
}


@pytest.fixture
def echoing() -> Any:
    with WandbEmulator(api_key=SECRET) as emu:
        yield emu


def _chat(emu: WandbEmulator, retry_policy: RetryPolicy) -> ChatWandb:
    return ChatWandb(
        model=QWEN, api_key=SECRET, base_url=emu.base_url, retry_policy=retry_policy
    )


async def _collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def _call(llm: Any, how: str) -> None:
    """Invoke or stream, sync or async, to the end."""
    import asyncio

    if how == "invoke":
        llm.invoke("hi")
    elif how == "ainvoke":
        asyncio.run(llm.ainvoke("hi"))
    elif how == "stream":
        list(llm.stream("hi"))
    else:
        asyncio.run(_collect(llm.astream("hi")))


CALLS = ["invoke", "ainvoke", "stream", "astream"]


@pytest.mark.parametrize("how", CALLS)
@pytest.mark.parametrize("status", [401, 403, 400, 500])
@pytest.mark.parametrize("shape", sorted(ECHOES))
def test_echoed_key_in_an_error_status_is_masked(
    echoing: WandbEmulator,
    retry_policy: RetryPolicy,
    debug_logs: pytest.LogCaptureFixture,
    shape: str,
    status: int,
    how: str,
) -> None:
    echoing.fault(status=status, body=ECHOES[shape], times=None)
    with pytest.raises(WandbError) as info:
        _call(_chat(echoing, retry_policy), how)
    assert info.value.status_code == status
    _assert_clean(info.value, debug_logs.text)
    if shape not in ("bare-key", "cut-text", "detail-list"):
        assert "***" in str(info.value)  # masked, not dropped: the rest still reads


@pytest.mark.parametrize("how", ["invoke", "ainvoke"])
def test_echoed_key_in_an_error_inside_a_200_body_is_masked(
    echoing: WandbEmulator, retry_policy: RetryPolicy, how: str
) -> None:
    body = {"error": {"message": f"invalid key {SECRET}", "code": "invalid_api_key"}}
    echoing.fault(status=200, body=body)
    with pytest.raises(WandbAuthenticationError) as info:
        _call(_chat(echoing, retry_policy), how)
    assert "invalid key ***" in str(info.value)
    _assert_clean(info.value)


@pytest.mark.parametrize("how", ["stream", "astream"])
def test_echoed_key_in_an_sse_error_event_is_masked(
    echoing: WandbEmulator, retry_policy: RetryPolicy, how: str
) -> None:
    event = (
        b'{"error": {"message": "invalid key Bearer '
        + SECRET.encode()
        + b'", "code": 401}}'
    )
    echoing.fault(status=200, body=b"data: " + event + b"\n\n")
    with pytest.raises(WandbAuthenticationError) as info:
        _call(_chat(echoing, retry_policy), how)
    assert "Bearer ***" in str(info.value)
    _assert_clean(info.value)


@pytest.mark.parametrize("how", ["stream", "astream"])
def test_echoed_key_in_a_malformed_stream_line_is_masked(
    echoing: WandbEmulator, retry_policy: RetryPolicy, how: str
) -> None:
    # The decoder quotes 80 characters of a bad line; the key straddles the cut.
    line = b"not json " + b"y" * 60 + SECRET.encode()
    echoing.fault(status=200, body=b"data: " + line + b"\n\n", times=None)
    with pytest.raises(WandbError, match="malformed stream line") as info:
        _call(_chat(echoing, retry_policy), how)
    _assert_clean(info.value)


@pytest.mark.parametrize("how", CALLS)
def test_router_surfaces_an_echoed_key_masked(
    echoing: WandbEmulator,
    retry_policy: RetryPolicy,
    debug_logs: pytest.LogCaptureFixture,
    how: str,
) -> None:
    router = WandbRouter(
        models=[QWEN, "deepseek-ai/DeepSeek-V3.1"],
        api_key=SECRET,
        base_url=echoing.base_url,
        retry_policy=retry_policy,
    )
    # A retried, then fallen-back 500 and a final 401 all quote the key; the
    # router's notes list every attempt.
    echoing.fault(status=500, body=ECHOES["openai-shape"], times=3, model=QWEN)
    echoing.fault(status=401, body=ECHOES["cut-text"], times=None)
    with pytest.raises(WandbAuthenticationError) as info:
        _call(router, how)
    assert info.value.__notes__  # the attempts, each described from its error
    assert "***" in " ".join(info.value.__notes__)
    _assert_clean(info.value, debug_logs.text)


# ------------------------------------------------------ the model object itself


def test_key_is_not_in_repr_str_dumps_or_model_dump() -> None:
    llm = ChatWandb(model=QWEN, api_key=SECRET)
    router = WandbRouter(models=QWEN, api_key=SECRET)
    for obj in (llm, router):
        texts = [
            repr(obj),
            str(obj),
            dumps(obj),
            dumps(obj, pretty=True),
            str(obj.model_dump()),
            obj.model_dump_json(),
        ]
        for text in texts:
            assert SECRET not in text
    assert "WANDB_API_KEY" in dumps(llm)  # a secret reference, not the value
