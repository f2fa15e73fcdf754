"""ChatWandb configuration: ids, credentials, URLs, projects and headers.

Everything here fails (or succeeds) before any network call.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai.chat_models.base import BaseChatOpenAI

from langchain_wandb_router import ChatWandb, Route, WandbRouter
from langchain_wandb_router.chat._fields import (
    HONOURED,
    REFUSED,
    check_stream_usage,
)
from langchain_wandb_router.errors import (
    WandbAuthenticationError,
    WandbModelRetiredError,
)
from langchain_wandb_router.transport._config import MissingAPIKeyError, check_headers

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
KEY = "k7q2x-wandb-unit-test-key-0123456789abcdef"


@pytest.mark.parametrize(
    "given", [QWEN, f"wandb/{QWEN}", f"wandb:{QWEN}", f"  wandb/{QWEN} "]
)
def test_model_prefixes_resolve_to_bare_id(given: str) -> None:
    llm = ChatWandb(model=given, api_key=KEY)
    assert llm.model_name == QWEN
    assert llm._get_request_payload("hi")["model"] == QWEN


def test_lora_ids_pass_through_untouched() -> None:
    lora = "wandb-artifact:///my-team/my-project/My-LoRA:v3"
    llm = ChatWandb(model=f"wandb/{lora}", api_key=KEY)
    assert llm.model_name == lora
    assert llm.profile is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "wandb/",
        "Qwen",
        "a/b/c",
        "Qwen/ Qwen3",
        "/Qwen3",
        "Qwen/",
        "Qwen/x\ny",
    ],
)
def test_malformed_ids_fail_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="Malformed W&B model id"):
        ChatWandb(model=bad, api_key=KEY)


def test_case_is_preserved() -> None:
    llm = ChatWandb(model="meta-llama/Llama-3.3-70B-Instruct", api_key=KEY)
    assert llm.model_name == "meta-llama/Llama-3.3-70B-Instruct"


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    assert ChatWandb(model=QWEN).openai_api_key.get_secret_value() == "from-env"  # type: ignore[union-attr]


def test_missing_key_names_the_env_var_and_never_uses_openai_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-should-never-be-used")
    with pytest.raises(MissingAPIKeyError, match="WANDB_API_KEY") as info:
        ChatWandb(model=QWEN)
    assert isinstance(info.value, WandbAuthenticationError)
    assert "sk-openai" not in str(info.value)


def test_openai_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_API_BASE", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-x")
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.openai_api_base == "https://api.inference.wandb.ai/v1"
    assert llm.openai_proxy is None
    assert llm.openai_organization is None
    assert "sk-openai" not in str(llm._headers)
    assert "OpenAI-Organization" not in llm._headers


def test_base_url_default_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        ChatWandb(model=QWEN, api_key=KEY).openai_api_base
        == "https://api.inference.wandb.ai/v1"
    )
    monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", "https://gateway.example/v1/")
    assert (
        ChatWandb(model=QWEN, api_key=KEY).openai_api_base
        == "https://gateway.example/v1"
    )
    llm = ChatWandb(model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1")
    assert llm._url == "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize(
    "url",
    ["http://api.inference.wandb.ai/v1", "http://10.0.0.5/v1", "http://example.com"],
)
def test_plain_http_to_remote_hosts_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        ChatWandb(model=QWEN, api_key=KEY, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/v1", "http://[::1]:8000/v1", "http://127.0.0.2/v1"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert ChatWandb(
        model=QWEN, api_key=KEY, base_url=url
    ).openai_api_base == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://x/v1", "not a url", "https://user:pw@host/v1"])
def test_other_bad_base_urls(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatWandb(model=QWEN, api_key=KEY, base_url=url)


def test_project_header_from_argument_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        ChatWandb(model=QWEN, api_key=KEY, project="team/proj")._headers[
            "OpenAI-Project"
        ]
        == "team/proj"
    )
    monkeypatch.setenv("WANDB_ENTITY", "ent")
    monkeypatch.setenv("WANDB_PROJECT", "proj")
    assert ChatWandb(model=QWEN, api_key=KEY).project == "ent/proj"
    monkeypatch.setenv("WANDB_INFERENCE_PROJECT", "team/inference")
    assert ChatWandb(model=QWEN, api_key=KEY).project == "team/inference"
    monkeypatch.delenv("WANDB_INFERENCE_PROJECT")
    monkeypatch.delenv("WANDB_PROJECT")
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.project is None
    assert "OpenAI-Project" not in llm._headers


@pytest.mark.parametrize(
    "bad",
    ["team", "team/", "/proj", "a/b/c", "team/pro ject", "team/proj\r\nX-Evil: 1"],
)
def test_bad_projects_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="team>/<project"):
        ChatWandb(model=QWEN, api_key=KEY, project=bad)


def test_bad_project_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_INFERENCE_PROJECT", "no-slash")
    with pytest.raises(ValueError, match="WANDB_INFERENCE_PROJECT"):
        ChatWandb(model=QWEN, api_key=KEY)


def test_default_headers_are_sent_as_given_but_checked() -> None:
    llm = ChatWandb(
        model=QWEN, api_key=KEY, default_headers={"X-Custom-Header": "value"}
    )
    assert llm._headers["X-Custom-Header"] == "value"
    with pytest.raises(ValueError, match="CR, LF"):
        ChatWandb(
            model=QWEN, api_key=KEY, default_headers={"X-A": "v\r\nX-Injected: 1"}
        )
    with pytest.raises(ValueError, match="cannot be overridden"):
        ChatWandb(
            model=QWEN, api_key=KEY, default_headers={"Authorization": "Bearer other"}
        )
    with pytest.raises(ValueError, match="Invalid header name"):
        ChatWandb(model=QWEN, api_key=KEY, default_headers={"Bad Name": "v"})


def test_retired_model_fails_at_construction_naming_date_and_successor() -> None:
    with pytest.raises(WandbModelRetiredError) as info:
        ChatWandb(model="wandb/moonshotai/Kimi-K2-Instruct", api_key=KEY)
    assert "2026-03-04" in str(info.value)
    assert "moonshotai/Kimi-K2.5" in str(info.value)
    assert info.value.successor == "moonshotai/Kimi-K2.5"


def test_retired_model_passed_per_call_fails_before_network() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(WandbModelRetiredError, match=r"DeepSeek-V3\.1"):
        llm.invoke("hi", model="deepseek-ai/DeepSeek-V3-0324")


def test_payload_shape() -> None:
    llm = ChatWandb(
        model=QWEN,
        api_key=KEY,
        max_tokens=64,
        enable_thinking=False,
        reasoning_effort="low",
        extra_body={"top_k": 20, "cache_salt": "s1"},
    )
    payload = llm._get_request_payload("hi")
    assert payload["max_tokens"] == 64
    assert "max_completion_tokens" not in payload
    assert payload["chat_template_kwargs"] == {"enable_thinking": False}
    assert payload["reasoning_effort"] == "low"
    assert payload["top_k"] == 20
    assert payload["cache_salt"] == "s1"
    assert "extra_body" not in payload
    assert "input" not in payload  # never the Responses API shape
    assert payload["messages"] == [{"role": "user", "content": "hi"}]


def test_responses_api_is_never_used() -> None:
    llm = ChatWandb(
        model=QWEN, api_key=KEY, output_version="responses/v1", use_responses_api=False
    )
    assert llm._use_responses_api({"tools": [{"type": "web_search"}]}) is False
    assert "messages" in llm._get_request_payload("hi")
    with pytest.raises(ValueError, match="use_responses_api= is not supported"):
        ChatWandb(model=QWEN, api_key=KEY, use_responses_api=True)


# ------------------------------------------------------------ field policy

# A value that asks for something, for every refused field.
REFUSED_SAMPLES: dict[str, Any] = {
    "openai_organization": "org-123",
    "openai_proxy": "http://proxy.example:3128",
    "include_response_headers": True,
    "use_responses_api": True,
    "use_previous_response_id": True,
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "truncation": "auto",
    "context_management": [{"type": "compaction"}],
    "reasoning": {"effort": "low"},
    "verbosity": "low",
    "service_tier": "flex",
    "prompt_cache_options": {"retention": "24h"},
    "client": object(),
    "async_client": object(),
    "root_client": object(),
    "root_async_client": object(),
    "http_socket_options": [(1, 9, 1)],
    "stream_chunk_timeout": 30.0,
    "stream_usage": False,
    "tiktoken_model_name": "gpt-4o",
}


def test_every_inherited_field_is_honoured_or_refused() -> None:
    """A field langchain-openai adds must get a decision, not a silent drop."""
    inherited = set(BaseChatOpenAI.model_fields)
    assert HONOURED.isdisjoint(REFUSED)
    assert inherited == HONOURED | set(REFUSED)
    assert set(REFUSED_SAMPLES) == set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_field_fails_naming_it_and_the_way_out(name: str) -> None:
    alias = ChatWandb.model_fields[name].alias
    label = f"{alias}= ({name})" if alias else f"{name}="
    with pytest.raises(ValueError, match="is not supported by ChatWandb") as info:
        ChatWandb(model=QWEN, api_key=KEY, **{alias or name: REFUSED_SAMPLES[name]})
    assert label in str(info.value)
    assert REFUSED[name].reason in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("use_responses_api", False),
        ("include_response_headers", False),
        ("use_previous_response_id", False),
        ("http_socket_options", ()),
        ("stream_chunk_timeout", None),
        ("stream_chunk_timeout", 0),
        ("store", None),
        ("stream_usage", True),
        ("stream_usage", None),
    ],
)
def test_values_that_ask_for_nothing_are_accepted(name: str, value: Any) -> None:
    assert getattr(ChatWandb(model=QWEN, api_key=KEY, **{name: value}), name) == value


def test_a_stream_without_usage_is_refused_per_call_too() -> None:
    check_stream_usage(None)
    check_stream_usage(True)
    with pytest.raises(ValueError, match="stream_usage= is not supported") as info:
        check_stream_usage(False)
    assert REFUSED["stream_usage"].reason in str(info.value)


def test_every_refused_field_in_use_is_named_at_once() -> None:
    with pytest.raises(ValueError, match="organization=") as info:
        ChatWandb(
            model=QWEN, api_key=KEY, organization="org", verbosity="low", store=True
        )
    assert "verbosity=" in str(info.value) and "store=" in str(info.value)


def test_openai_stream_chunk_timeout_env_default_is_not_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGCHAIN_OPENAI_STREAM_CHUNK_TIMEOUT_S", "5")
    assert ChatWandb(model=QWEN, api_key=KEY).stream_chunk_timeout == 5.0


def test_custom_get_token_ids_is_honoured() -> None:
    def ids(text: str) -> list[int]:
        return [ord(c) for c in text]

    llm = ChatWandb(model=QWEN, api_key=KEY, custom_get_token_ids=ids)
    assert llm.get_num_tokens("abcdef") == 6
    assert llm.get_token_ids("ab") == [97, 98]
    messages = [HumanMessage("abcd"), AIMessage("xy")]
    assert llm.get_num_tokens_from_messages(messages) == len("Human: abcd") + len(
        "AI: xy"
    )


def test_n_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="n must be at least 1"):
        ChatWandb(model=QWEN, api_key=KEY, n=0)


def test_base_url_with_a_query_points_to_default_query() -> None:
    with pytest.raises(ValueError, match="default_query"):
        ChatWandb(model=QWEN, api_key=KEY, base_url="https://gw.example/v1?x=1")


# ------------------------------------------------------- cached parameters


def test_params_follow_field_assignment_in_place_edits_and_copies() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, temperature=0.1)
    assert llm._get_request_payload("hi")["temperature"] == 0.1
    llm.temperature = 0.7
    llm.enable_thinking = True
    payload = llm._get_request_payload("hi")
    assert payload["temperature"] == 0.7
    assert payload["chat_template_kwargs"] == {"enable_thinking": True}
    llm.model_kwargs["top_k"] = 5
    assert llm._get_request_payload("hi")["top_k"] == 5
    del llm.model_kwargs["top_k"]
    assert "top_k" not in llm._get_request_payload("hi")
    copy = llm.model_copy(update={"temperature": 0.2, "max_tokens": 9})
    assert copy._get_request_payload("hi")["temperature"] == 0.2
    assert copy._get_request_payload("hi")["max_tokens"] == 9
    assert llm._get_request_payload("hi")["temperature"] == 0.7
    assert "max_tokens" not in llm._get_request_payload("hi")


def test_callers_may_change_the_params_they_get() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY, temperature=0.1)
    llm._default_params["temperature"] = 1.5
    assert llm._default_params["temperature"] == 0.1


def test_key_never_in_repr_str_or_dumps() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert KEY not in repr(llm)
    assert KEY not in str(llm)
    dumped = dumps(llm)
    assert KEY not in dumped
    assert "WANDB_API_KEY" in dumped


@pytest.mark.parametrize(
    "bad",
    [
        {"base_url": "http://example.com/v1"},
        {"project": "no-slash"},
        {"organization": "org"},
        {"default_headers": {"Authorization": "x"}},
    ],
)
def test_construction_errors_never_quote_the_key(bad: dict[str, Any]) -> None:
    # The key first: pydantic quotes the start of the input in its errors.
    with pytest.raises(ValueError) as info:  # noqa: PT011 - message checked below
        ChatWandb(api_key=KEY, model=QWEN, **bad)
    text = str(info.value) + repr(info.value)
    assert KEY[:6] not in text
    assert "validation error for ChatWandb" in text


def test_ls_params_report_wandb() -> None:
    llm = ChatWandb(model=f"wandb/{QWEN}", api_key=KEY, temperature=0.2)
    params = llm._get_ls_params()
    assert params["ls_provider"] == "wandb"
    assert params["ls_model_name"] == QWEN
    assert params["ls_temperature"] == 0.2


def test_profile_and_model_info_come_from_catalog() -> None:
    llm = ChatWandb(model="wandb/moonshotai/Kimi-K2.5", api_key=KEY)
    assert llm.profile is not None
    assert llm.profile["image_inputs"] is True
    assert llm.profile["reasoning_output"] is True
    assert llm.profile["max_input_tokens"] == 262144
    assert llm.model_info is not None
    assert llm.model_info.reasoning == "always"


def test_negative_retries_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        ChatWandb(model=QWEN, api_key=KEY, max_retries=-1)


def test_token_estimates_are_offline() -> None:
    llm = ChatWandb(model=QWEN, api_key=KEY)
    assert llm.get_num_tokens("abcd" * 10) == 10
    assert llm.get_num_tokens_from_messages([HumanMessage("abcd" * 10)]) == 14


# ------------------------------------------- input the wire cannot carry
# Each of these used to pass construction and then fail every call with a raw
# UnicodeEncodeError (whose .object held 'Bearer <key>'); now construction
# refuses them with a ValueError naming the field, never quoting the key.


def _router(**kwargs: Any) -> WandbRouter:
    kwargs.setdefault("models", QWEN)
    return WandbRouter(**kwargs)


def _chat(**kwargs: Any) -> ChatWandb:
    return ChatWandb(model=QWEN, **kwargs)


BUILDERS = [
    pytest.param(_chat, id="ChatWandb"),
    pytest.param(_router, id="WandbRouter"),
]

BAD_CHARS = [
    pytest.param("é", "U+00E9 (a non-ASCII character)", id="non-ascii"),
    pytest.param("\u2028", "U+2028 (a non-ASCII character)", id="line-separator"),
    pytest.param("\r", "U+000D (a line break)", id="CR"),
    pytest.param("\n", "U+000A (a line break)", id="LF"),
    pytest.param("\x00", "U+0000 (a control character)", id="NUL"),
    pytest.param("\x1b", "U+001B (a control character)", id="ESC"),
    pytest.param("\x7f", "U+007F (a control character)", id="DEL"),
]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(("char", "shown"), BAD_CHARS)
def test_project_with_a_bad_character_is_refused(
    build: Any, char: str, shown: str
) -> None:
    with pytest.raises(ValueError, match="project must be") as info:
        build(api_key=KEY, project=f"team/pro{char}ject")
    assert f"{shown} at index 8" in str(info.value)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WANDB_INFERENCE_PROJECT": "tëam/proj"}, "WANDB_INFERENCE_PROJECT"),
        (
            {"WANDB_ENTITY": "team", "WANDB_PROJECT": "pröj"},
            "WANDB_ENTITY/WANDB_PROJECT",
        ),
        (
            {"WANDB_ENTITY": "te\tam", "WANDB_PROJECT": "p"},
            "WANDB_ENTITY/WANDB_PROJECT",
        ),
    ],
)
def test_project_from_the_environment_names_its_variable(
    build: Any, env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{named} must be") as info:
        build(api_key=KEY)
    assert "at index" in str(info.value)


def test_project_with_a_trailing_newline_is_refused() -> None:
    # `$` in a regex matches before a final "\n"; the check must not.
    with pytest.raises(ValueError, match="line break"):
        _chat(api_key=KEY, project="team/proj\n")


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(("char", "shown"), BAD_CHARS)
def test_header_value_with_a_bad_character_is_refused_without_echo(
    build: Any, char: str, shown: str
) -> None:
    token = "gateway-token-0123456789"  # a header value may be a secret too
    with pytest.raises(ValueError, match="'X-Gateway' in default_headers") as info:
        build(api_key=KEY, default_headers={"X-Gateway": f"{token}{char}"})
    text = str(info.value)
    assert f"{shown} at index {len(token)}" in text
    assert token not in text
    assert KEY not in text


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("name", ["X-Café", "X-\u0100", "X\r\nEvil", "X-A\x00", ""])
def test_header_name_outside_the_token_alphabet_is_refused(
    build: Any, name: str
) -> None:
    with pytest.raises(ValueError, match=r"Invalid header name .* in default_headers"):
        build(api_key=KEY, default_headers={name: "v"})


def test_header_values_may_hold_tabs_spaces_and_any_printable_ascii() -> None:
    value = "a\tb c ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"
    llm = _chat(api_key=KEY, default_headers={"X-Ok": value})
    assert llm._headers["X-Ok"] == value
    router = _router(api_key=KEY, default_headers={"X-Ok": value})
    assert router.default_headers == {"X-Ok": value}


def test_headers_that_are_not_strings_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="must map a str to a str"):
        check_headers({"X-A": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(("char", "shown"), BAD_CHARS)
def test_route_headers_go_through_the_same_check(char: str, shown: str) -> None:
    route = Route(QWEN, headers={"X-Route": f"v{char}"})
    with pytest.raises(ValueError, match=r"'X-Route' in Route\('Qwen/") as info:
        WandbRouter(models=[route], api_key=KEY)
    assert f"{shown} at index 1" in str(info.value)
    with pytest.raises(ValueError, match="cannot be overridden"):
        WandbRouter(models=[Route(QWEN, headers={"Authorization": "x"})], api_key=KEY)


BAD_KEY_CHARS = [
    pytest.param("é", "a non-ASCII character", id="non-ascii"),
    pytest.param("\n", "a line break", id="LF"),
    pytest.param("\r", "a line break", id="CR"),
    pytest.param("\x00", "a control character", id="NUL"),
    pytest.param("\x7f", "a control character", id="DEL"),
    pytest.param(" ", "whitespace", id="space"),
    pytest.param("\t", "a control character", id="tab"),
]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(("char", "kind"), BAD_KEY_CHARS)
@pytest.mark.parametrize("where", ["middle", "end"])
def test_api_key_argument_with_a_bad_character_is_refused(
    build: Any, char: str, kind: str, where: str
) -> None:
    key = KEY[:10] + char + KEY[10:] if where == "middle" else KEY + char
    with pytest.raises(ValueError, match=r"W&B API key \(api_key\)") as info:
        build(api_key=key)
    text = str(info.value) + repr(info.value)
    assert kind in text
    assert KEY[:10] not in text and KEY[10:] not in text


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("char", "kind"),
    [p for p in BAD_KEY_CHARS if p.id != "NUL"],  # no NUL in an environment
)
def test_api_key_from_the_environment_names_the_variable(
    build: Any, char: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY + char)
    with pytest.raises(ValueError, match=r"W&B API key \(WANDB_API_KEY\)") as info:
        build()
    assert kind in str(info.value)
    assert KEY[:10] not in str(info.value) + repr(info.value)


def test_router_without_w_and_b_routes_ignores_a_bad_env_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The key is never sent, so an unrelated variable must not break the router.
    monkeypatch.setenv("WANDB_API_KEY", "bad key\n")
    foreign = ChatWandb(model=QWEN, api_key=KEY)
    assert WandbRouter(models=[foreign]).api_key is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"project": "no-slash"},
        {"project": "team/é"},
        {"default_headers": {"X-A": "\r\n"}},
        {"base_url": "http://example.com/v1"},
        {"budget_usd": 1.0, "models": "wandb-artifact:///t/p/lora:v1"},
    ],
)
def test_router_construction_errors_never_quote_the_key(bad: dict[str, Any]) -> None:
    # The key last: pydantic used to quote the end of the input.
    args = {"models": QWEN, **bad, "api_key": KEY}
    with pytest.raises(ValueError) as info:  # noqa: PT011 - message checked below
        WandbRouter(**args)
    text = str(info.value) + repr(info.value)
    assert KEY[-6:] not in text and KEY[:6] not in text
    assert "validation error for WandbRouter" in text
