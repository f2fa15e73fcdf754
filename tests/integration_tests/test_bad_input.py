"""Text the wire cannot carry is refused before any request, with a typed error.

A Python string may hold a lone surrogate ("\\ud800"); UTF-8 has no encoding for
it, so such a request used to die in the transport with a raw UnicodeEncodeError.
Now it is a WandbInvalidRequestError naming the message and field, raised
before the network, never retried and never fallen back from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_wandb_router import RetryPolicy
from langchain_wandb_router.errors import WandbInvalidRequestError
from langchain_wandb_router.testing import WandbEmulator
from langchain_wandb_router.transport._http import encode_body

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DEEPSEEK = "deepseek-ai/DeepSeek-V3.1"
PRIVATE = "private-user-text"  # around the surrogate; never quoted back


async def _collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def _call(model: Any, how: str, messages: Any) -> None:
    if how == "invoke":
        model.invoke(messages)
    elif how == "ainvoke":
        asyncio.run(model.ainvoke(messages))
    elif how == "stream":
        list(model.stream(messages))
    else:
        asyncio.run(_collect(model.astream(messages)))


CALLS = ["invoke", "ainvoke", "stream", "astream"]


def _refused(model: Any, how: str, messages: Any) -> WandbInvalidRequestError:
    with pytest.raises(WandbInvalidRequestError) as info:
        _call(model, how, messages)
    err = info.value
    assert not isinstance(err, UnicodeError)
    # The cause would hold the whole body (every message) in its .object.
    assert err.__cause__ is None and err.__suppress_context__
    assert err.status_code is None  # nothing was sent
    assert PRIVATE not in str(err)
    assert "lone surrogate" in str(err)
    return err


@pytest.mark.parametrize("how", CALLS)
def test_chat_wandb_refuses_a_lone_surrogate_before_the_network(
    chat_factory: Callable[..., Any],
    emulator: WandbEmulator,
    sleeps: list[float],
    how: str,
) -> None:
    llm = chat_factory()
    messages = [SystemMessage("be brief"), HumanMessage(f"{PRIVATE}\ud800{PRIVATE}")]
    err = _refused(llm, how, messages)
    assert (
        f"message 2 of 2 (user), content, has a lone surrogate (U+D800) at index {len(PRIVATE)}"
        in str(err)
    )
    assert err.model == QWEN
    assert emulator.chat_requests() == []
    assert sleeps == []  # not retried


@pytest.mark.parametrize(
    ("messages", "where"),
    [
        pytest.param(
            [HumanMessage(content=[{"type": "text", "text": f"{PRIVATE}\udc80"}])],
            "message 1 of 1 (user), content[0].text,",
            id="list-content (langchain-openai's conversion)",
        ),
        pytest.param(
            [
                HumanMessage("look it up"),
                AIMessage(
                    "",
                    tool_calls=[
                        {
                            "name": "search",
                            "args": {"q": f"{PRIVATE}\udfff"},
                            "id": "c1",
                        }
                    ],
                ),
                ToolMessage("found", tool_call_id="c1"),
            ],
            "message 2 of 3 (assistant), tool_calls[0].function.arguments,",
            id="tool-call-arguments (fast path)",
        ),
        pytest.param(
            [HumanMessage("hi"), ToolMessage(f"{PRIVATE}\ud83d", tool_call_id="c1")],
            "message 2 of 2 (tool), content,",
            id="half-an-emoji",
        ),
        pytest.param(
            [SystemMessage(f"{PRIVATE}\udcff")],
            "message 1 of 1 (system), content,",
            id="surrogateescape-residue",
        ),
    ],
)
def test_the_error_names_the_message_and_field(
    chat_factory: Callable[..., Any],
    emulator: WandbEmulator,
    messages: list[BaseMessage],
    where: str,
) -> None:
    err = _refused(chat_factory(), "invoke", messages)
    assert where in str(err)
    assert emulator.chat_requests() == []


def test_a_surrogate_outside_the_messages_is_named_too(
    chat_factory: Callable[..., Any], emulator: WandbEmulator
) -> None:
    def search(q: str) -> str:
        """Search the web\ud800."""
        return q

    err = _refused(chat_factory().bind_tools([search]), "invoke", "hi")
    assert "the request's tools[0].function.description" in str(err)
    assert emulator.chat_requests() == []


def test_encode_body_raises_it_once_for_every_path() -> None:
    payload = {
        "model": QWEN,
        "messages": [
            {"role": "user", "content": "ok"},
            {"role": "user", "content": "\ud800"},
        ],
    }
    with pytest.raises(
        WandbInvalidRequestError, match=r"message 2 of 2 \(user\), content"
    ) as info:
        encode_body(payload)
    assert not RetryPolicy().is_retryable(info.value)
    # Everything UTF-8 can encode still goes through untouched.
    assert encode_body({"t": "Zürich 😀 \u2028"}) == '{"t":"Zürich 😀 \u2028"}'.encode()


@pytest.mark.parametrize("how", CALLS)
@pytest.mark.parametrize("fallback_statuses", [frozenset(), frozenset({400, 422})])
def test_router_surfaces_it_at_once_without_retry_or_fallback(
    router_factory: Callable[..., Any],
    emulator: WandbEmulator,
    sleeps: list[float],
    how: str,
    fallback_statuses: frozenset[int],
) -> None:
    router = router_factory([QWEN, DEEPSEEK], fallback_statuses=fallback_statuses)
    err = _refused(router, how, [HumanMessage(f"{PRIVATE}\ud800")])
    assert "message 1 of 1 (user), content" in str(err)
    assert emulator.chat_requests() == []
    assert sleeps == []
    # One attempt, on the first route: the error was not retried or passed on.
    notes = " ".join(getattr(err, "__notes__", []))
    assert DEEPSEEK not in notes


def test_the_router_and_model_still_work_after_a_refusal(
    chat_factory: Callable[..., Any],
    router_factory: Callable[..., Any],
    emulator: WandbEmulator,
) -> None:
    llm, router = chat_factory(), router_factory([QWEN, DEEPSEEK])
    for model in (llm, router):
        with pytest.raises(WandbInvalidRequestError):
            model.invoke("\ud800")
        assert model.invoke("hi").content
    assert len(emulator.chat_requests()) == 2
