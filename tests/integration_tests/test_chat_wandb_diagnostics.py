"""Issue 16 for ChatWandb: configurable fields, strict schemas, and 404s that say why.

- ``configurable_fields`` rebuilds the model from its attributes, defaults
  included: an inherited default is not a refused setting.
- ``with_structured_output(PydanticClass, strict=True)`` sends ``strict`` and
  ``additionalProperties: false``, as a dict schema does.
- A base URL ending in ``/chat/completions`` is refused at construction; a 404
  from a non-default base URL says to check it; a model id that is a catalog
  id in the wrong case fails before any request, and a near miss is named.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.runnables import ConfigurableField
from pydantic import BaseModel, ValidationError

from langchain_wandb_router import ChatWandb, Route, WandbRouter
from langchain_wandb_router.errors import WandbModelNotFoundError
from langchain_wandb_router.testing import WandbEmulator

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"


class Trip(BaseModel):
    city: str
    days: int


def last_body(emulator: WandbEmulator) -> dict[str, Any]:
    return emulator.chat_requests()[-1].json or {}


# ------------------------------------------------------------ configurable fields


def test_configurable_fields_rebuild_the_model(
    emulator: WandbEmulator, chat_factory: Any
) -> None:
    configurable = chat_factory().configurable_fields(
        temperature=ConfigurableField(id="t")
    )
    answer = configurable.invoke("hi", config={"configurable": {"t": 0.5}})
    assert answer.text
    assert last_body(emulator)["temperature"] == 0.5


def test_a_stream_chunk_timeout_given_is_still_refused() -> None:
    with pytest.raises(ValidationError, match="stream_chunk_timeout"):
        ChatWandb(model=QWEN, api_key="k" * 40, stream_chunk_timeout=5)


# ---------------------------------------------------------------- strict schemas


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "parent"])
def test_strict_pydantic_schema_is_sent_strict(
    emulator: WandbEmulator, chat_factory: Any, fast: bool
) -> None:
    llm = chat_factory(disable_fast_paths=not fast)
    trip = llm.with_structured_output(Trip, strict=True).invoke("Plan Lisbon")
    assert isinstance(trip, Trip)
    spec = last_body(emulator)["response_format"]["json_schema"]
    assert spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert "strict" not in last_body(emulator)  # not a body field of its own

    raw = llm.with_structured_output(Trip, strict=True, include_raw=True)
    out = raw.invoke("Plan Lisbon")
    assert isinstance(out["parsed"], Trip) and out["parsing_error"] is None


def test_without_strict_nothing_is_added(
    emulator: WandbEmulator, chat_factory: Any
) -> None:
    trip = chat_factory().with_structured_output(Trip).invoke("Plan Lisbon")
    assert isinstance(trip, Trip)
    spec = last_body(emulator)["response_format"]["json_schema"]
    assert "strict" not in spec
    assert "additionalProperties" not in spec["schema"]


def test_strict_streams_too(emulator: WandbEmulator, chat_factory: Any) -> None:
    chunks = list(chat_factory().with_structured_output(Trip, strict=True).stream("x"))
    assert isinstance(chunks[-1], Trip)
    assert last_body(emulator)["response_format"]["json_schema"]["strict"] is True


# ------------------------------------------------------------------- base URLs


@pytest.mark.parametrize(
    "url",
    [
        "https://api.inference.wandb.ai/v1/chat/completions",
        "https://api.inference.wandb.ai/v1/chat/completions/",
    ],
)
def test_a_base_url_ending_in_the_endpoint_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match=re.escape("'https://api.inference.wandb.ai/v1'")):
        ChatWandb(model=QWEN, api_key="k" * 40, base_url=url)
    with pytest.raises(ValidationError, match="root, not its endpoint"):
        WandbRouter(models=f"wandb/{QWEN}", api_key="k" * 40, base_url=url)


def test_a_404_from_another_base_url_says_to_check_it(emulator: WandbEmulator) -> None:
    without_v1 = emulator.base_url.removesuffix("/v1")
    llm = ChatWandb(model=QWEN, api_key=emulator.api_key, base_url=without_v1)
    with pytest.raises(WandbModelNotFoundError) as caught:
        llm.invoke("hi")
    text = str(caught.value)
    assert f"Check base_url ({without_v1})" in text
    assert "https://api.inference.wandb.ai/v1" in text


def test_a_404_from_w_and_bs_own_url_does_not_blame_it() -> None:
    from langchain_wandb_router.errors import error_for_status, not_found_advice

    advice = not_found_advice(
        suggestion=None, base_url=None, default_base_url="https://x/v1"
    )
    assert advice is None
    error = error_for_status(404, "not found", model="a/b", advice=advice)
    assert "base_url" not in str(error)
    assert "wandb-router models --live" in str(error)


# -------------------------------------------------------------------- model ids


def test_a_wrong_cased_model_id_fails_before_any_request(
    emulator: WandbEmulator,
) -> None:
    with pytest.raises(WandbModelNotFoundError, match=re.escape(f"did you mean 'wandb/{QWEN}'")):
        ChatWandb(
            model=QWEN.lower(), api_key=emulator.api_key, base_url=emulator.base_url
        )
    with pytest.raises(WandbModelNotFoundError, match="case-sensitive"):
        Route(f"wandb/{QWEN.upper()}")
    with pytest.raises(WandbModelNotFoundError, match="case-sensitive"):
        WandbRouter(models=[f"wandb/{QWEN.lower()}"], api_key=emulator.api_key)
    assert emulator.requests == []


def test_a_near_miss_is_named_in_the_404(emulator: WandbEmulator) -> None:
    typo = QWEN.replace("2507", "2508")
    llm = ChatWandb(model=typo, api_key=emulator.api_key, base_url=emulator.base_url)
    with pytest.raises(WandbModelNotFoundError, match=re.escape(f"Did you mean 'wandb/{QWEN}'")):
        llm.invoke("hi")
    # Streams say the same.
    with pytest.raises(WandbModelNotFoundError, match="Did you mean"):
        list(llm.stream("hi"))


def test_unlike_ids_get_no_suggestion() -> None:
    from langchain_wandb_router.catalog._models import suggest_model_id

    assert suggest_model_id(QWEN) is None  # a catalog id
    assert suggest_model_id("acme/brand-new-model") is None
    assert suggest_model_id(QWEN.lower()) == QWEN
    assert json.dumps(suggest_model_id(f"wandb/{QWEN}x")) == json.dumps(QWEN)
