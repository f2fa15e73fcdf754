"""Property-based tests: any input either works or fails with a clear, typed error
before the network. No example here may reach a socket: the base URL points at
a closed loopback port, so a request would show up as a connection error."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import ValidationError

from langchain_wandb_router import ChatWandb, WandbRouter, _secrets
from langchain_wandb_router.catalog._models import normalize_model_id
from langchain_wandb_router.errors import WandbError
from langchain_wandb_router.transport._config import check_headers, check_project
from langchain_wandb_router.transport._http import encode_body

KEY = "property-test-key"
CLOSED = "http://127.0.0.1:9/v1"
QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
CLEAR = (ValueError, TypeError, WandbError)



@pytest.fixture(autouse=True)
def _forget_generated_keys() -> Iterator[None]:
    """Keys made up here are registered as secrets like any other; forget them
    after each test, so a made-up key never masks text in a later test."""
    registered = _secrets._secrets
    yield
    _secrets._secrets = registered


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
id_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
ids = st.one_of(
    st.text(id_chars, max_size=40),
    st.builds(lambda a, b: f"{a}/{b}", st.text(id_chars, max_size=15), st.text(id_chars, max_size=15)),
    st.builds(lambda p, a, b: f"{p}{a}/{b}", st.sampled_from(["wandb/", "wandb:", "", " "]),
              st.text(string.ascii_letters + "-._", min_size=1, max_size=12),
              st.text(string.ascii_letters + "-._0123456789", min_size=1, max_size=20)),
)


@SETTINGS
@given(ids)
def test_model_ids_normalise_or_raise_value_error(raw: str) -> None:
    try:
        bare = normalize_model_id(raw)
    except ValueError as exc:
        assert "model id" in str(exc)  # noqa: PT017 - the property is about every input
        return
    assert not bare.startswith(("wandb/", "wandb:"))
    assert not any(ch.isspace() or ord(ch) < 32 for ch in bare)
    assert bare.startswith("wandb-artifact:///") or bare.count("/") == 1
    assert raw.strip().endswith(bare)  # never lower-cased, never re-split


@SETTINGS
@given(st.text(id_chars, max_size=40))
def test_projects_are_exactly_team_slash_project(raw: str) -> None:
    try:
        value = check_project(raw)
    except ValueError:
        # The project is a header value: printable ASCII only.
        assert raw.count("/") != 1 or any(ch.isspace() or ord(ch) < 32 or ord(ch) >= 127 for ch in raw) or raw.startswith("/") or raw.endswith("/")
        return
    assert value == raw
    team, project = value.split("/")
    assert team and project
    assert "\r" not in value and "\n" not in value


header_text = st.text(id_chars, max_size=20)


@SETTINGS
@given(st.dictionaries(header_text, header_text, max_size=4))
def test_headers_never_allow_injection(headers: dict[str, str]) -> None:
    try:
        checked = check_headers(headers)
    except (ValueError, TypeError):
        return
    for name, value in checked.items():
        assert not any(ch in value for ch in "\r\n\x00")
        assert name.isascii() and ":" not in name and " " not in name
    # And a model built with them works or fails clearly, before any request.
    try:
        llm = ChatWandb(model=QWEN, api_key=KEY, base_url=CLOSED, default_headers=headers)
    except CLEAR:
        return
    assert all(llm._headers[k] == v for k, v in checked.items())


@SETTINGS
@given(st.text(id_chars, max_size=30))
def test_api_keys_cannot_inject_headers(key: str) -> None:
    try:
        llm = ChatWandb(model=QWEN, api_key=key, base_url=CLOSED)
    except CLEAR:
        return
    assert "\r" not in llm._headers["Authorization"] and "\n" not in llm._headers["Authorization"]


text_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=30)})
content = st.one_of(st.text(max_size=60), st.lists(text_part, max_size=3))
messages = st.lists(
    st.one_of(
        st.builds(HumanMessage, content=content),
        st.builds(SystemMessage, content=st.text(max_size=40)),
        st.builds(AIMessage, content=st.text(max_size=40)),
        st.builds(ToolMessage, content=st.text(max_size=40), tool_call_id=st.text(string.ascii_letters, min_size=1, max_size=8)),
    ),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(messages)
def test_any_message_list_becomes_a_valid_body(msgs: list) -> None:
    before = [m.model_copy(deep=True) for m in msgs]
    llm = ChatWandb(model=QWEN, api_key=KEY, base_url=CLOSED)
    payload = llm._get_request_payload(msgs)
    assert payload["model"] == QWEN
    assert len(payload["messages"]) == len(msgs)
    assert encode_body(payload)  # always JSON-encodable
    assert msgs == before  # building a request never mutates the caller's messages
    # Both ways: with the fast paths switched off (langchain-openai's converters
    # only), the same bytes, and still no mutation.
    off = ChatWandb(model=QWEN, api_key=KEY, base_url=CLOSED, disable_fast_paths=True)
    assert encode_body(off._get_request_payload(msgs)) == encode_body(payload)
    assert msgs == before


@SETTINGS
@given(
    temperature=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=5)),
    max_tokens=st.one_of(st.none(), st.integers(-5, 10**6), st.text(max_size=5)),
    max_retries=st.one_of(st.integers(-3, 10), st.text(max_size=3)),
    timeout=st.one_of(st.none(), st.floats(min_value=0.001, max_value=600), st.text(max_size=3)),
)
def test_config_values_work_or_fail_clearly(temperature: object, max_tokens: object, max_retries: object, timeout: object) -> None:
    kwargs = {"temperature": temperature, "max_tokens": max_tokens, "max_retries": max_retries, "timeout": timeout}
    with contextlib.suppress(CLEAR):
        ChatWandb(model=QWEN, api_key=KEY, base_url=CLOSED, **kwargs)
    with contextlib.suppress(CLEAR):
        WandbRouter(models=QWEN, api_key=KEY, base_url=CLOSED, **kwargs)


@SETTINGS
@given(st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=30),
                 st.lists(st.text(max_size=20), max_size=3)))
def test_router_model_specs_work_or_fail_clearly(spec: object) -> None:
    with contextlib.suppress(CLEAR):
        WandbRouter(models=spec, api_key=KEY, base_url=CLOSED)


@pytest.mark.parametrize("url", ["http://203.0.113.7/v1", "http://wandb.example/v1", "http://192.168.1.2:8000/v1"])
def test_plain_http_to_non_loopback_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="clear text"):
        ChatWandb(model=QWEN, api_key=KEY, base_url=url)
    with pytest.raises(ValueError, match="clear text"):
        WandbRouter(models=QWEN, api_key=KEY, base_url=url)
