"""register_weave_costs(): the catalog's prices, per token, into a Weave project.

The fakes below record what Weave's client would receive; their ``add_cost``
signatures are Weave's own (0.54: with cache prices; earlier: without).
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import textwrap
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest

from langchain_wandb_router import register_weave_costs
from langchain_wandb_router.catalog._models import (
    ModelInfo,
    Pricing,
    list_models,
    register_model,
)

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
DS_FLASH = "deepseek-ai/DeepSeek-V4-Flash"
UNPRICED = "test-org/unpriced-for-weave"
LOGGER = "langchain_wandb_router.integrations._weave"


class RecordingWeaveClient:
    """``weave.WeaveClient.add_cost`` as of weave 0.54 (cache prices included)."""

    def __init__(self) -> None:
        self.costs: list[dict[str, Any]] = []

    def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        effective_date: datetime | None = None,
        prompt_token_cost_unit: str | None = "USD",
        completion_token_cost_unit: str | None = "USD",
        provider_id: str | None = "default",
        cache_read_input_token_cost: float = 0,
        cache_creation_input_token_cost: float = 0,
    ) -> dict[str, Any]:
        self.costs.append(
            {
                "llm_id": llm_id,
                "prompt_token_cost": prompt_token_cost,
                "completion_token_cost": completion_token_cost,
                "effective_date": effective_date,
                "prompt_token_cost_unit": prompt_token_cost_unit,
                "completion_token_cost_unit": completion_token_cost_unit,
                "provider_id": provider_id,
                "cache_read_input_token_cost": cache_read_input_token_cost,
                "cache_creation_input_token_cost": cache_creation_input_token_cost,
            }
        )
        return {"ids": [[llm_id, f"cost-{len(self.costs)}"]]}

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {c["llm_id"]: c for c in self.costs}


class OlderWeaveClient:
    """``add_cost`` before Weave priced cached tokens: no cache parameters."""

    def __init__(self) -> None:
        self.costs: list[dict[str, Any]] = []

    def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        effective_date: datetime | None = None,
        prompt_token_cost_unit: str | None = "USD",
        completion_token_cost_unit: str | None = "USD",
        provider_id: str | None = "default",
    ) -> None:
        self.costs.append(
            {
                "llm_id": llm_id,
                "prompt": prompt_token_cost,
                "completion": completion_token_cost,
                "provider_id": provider_id,
            }
        )


class KwargsClient:
    """A wrapper that forwards ``**kwargs`` (cache prices must still be sent)."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        **kwargs: Any,
    ) -> None:
        self.kwargs.append({"llm_id": llm_id, **kwargs})


def _priced(info: ModelInfo) -> bool:
    return info.pricing.input is not None and info.pricing.output is not None


# ------------------------------------------------------------- the whole catalog


def test_every_priced_catalog_model_is_registered_per_token() -> None:
    client = RecordingWeaveClient()
    ids = register_weave_costs(client)

    catalog = list_models(include_retired=True)
    assert ids == [m.id for m in catalog if _priced(m)]
    assert [c["llm_id"] for c in client.costs] == ids  # one row each, in order
    for info in catalog:
        if not _priced(info):
            continue
        cost = client.by_id()[info.id]
        assert info.pricing.input is not None and info.pricing.output is not None
        assert cost["prompt_token_cost"] == pytest.approx(
            info.pricing.input / 1e6, rel=1e-12
        )
        assert cost["completion_token_cost"] == pytest.approx(
            info.pricing.output / 1e6, rel=1e-12
        )
        assert cost["provider_id"] == "wandb"
        assert cost["effective_date"] is None  # Weave's default: now
        assert (cost["prompt_token_cost_unit"], cost["completion_token_cost_unit"]) == (
            "USD",
            "USD",
        )


def test_known_prices_land_as_weave_expects_them() -> None:
    client = RecordingWeaveClient()
    register_weave_costs(client)
    qwen, flash = client.by_id()[QWEN], client.by_id()[DS_FLASH]
    # $0.10 / $0.10 per 1M tokens; no cache-read price: cached tokens cost input.
    assert qwen["prompt_token_cost"] == pytest.approx(1e-7, rel=1e-12)
    assert qwen["completion_token_cost"] == pytest.approx(1e-7, rel=1e-12)
    assert qwen["cache_read_input_token_cost"] == pytest.approx(1e-7, rel=1e-12)
    # $0.14 / $0.28 per 1M, cache read $0.07 per 1M.
    assert flash["prompt_token_cost"] == pytest.approx(1.4e-7, rel=1e-12)
    assert flash["completion_token_cost"] == pytest.approx(2.8e-7, rel=1e-12)
    assert flash["cache_read_input_token_cost"] == pytest.approx(7e-8, rel=1e-12)
    # W&B bills no cache writes: Weave's default of 0 would make them free.
    assert flash["cache_creation_input_token_cost"] == pytest.approx(1.4e-7, rel=1e-12)


def test_retired_models_are_priced_for_older_traces() -> None:
    retired = [
        m.id for m in list_models(include_retired=True) if m.is_retired() and _priced(m)
    ]
    assert retired, "the shipped catalog keeps retired models with their prices"
    ids = register_weave_costs(RecordingWeaveClient())
    assert set(retired) <= set(ids)


def test_unpriced_catalog_models_are_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every shipped model is priced now; a registered one without a price
    # stands for a model newer than the catalog.
    register_model(ModelInfo(id=UNPRICED, pricing=Pricing()))
    unpriced = [m.id for m in list_models(include_retired=True) if not _priced(m)]
    assert UNPRICED in unpriced
    client = RecordingWeaveClient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole catalog: a log line, no warning
        with caplog.at_level(logging.INFO, logger=LOGGER):
            ids = register_weave_costs(client)
    assert not set(unpriced) & set(ids)
    assert not set(unpriced) & set(client.by_id())
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    for model_id in unpriced:
        assert model_id in logged


# ------------------------------------------------------------------ named models


def test_named_models_accept_prefixes_and_repeat_once() -> None:
    client = RecordingWeaveClient()
    ids = register_weave_costs(client, [f"wandb/{QWEN}", f"wandb:{DS_FLASH}", QWEN])
    assert ids == [QWEN, DS_FLASH]
    assert [c["llm_id"] for c in client.costs] == [QWEN, DS_FLASH]


def test_named_models_without_price_warn_and_are_skipped() -> None:
    register_model(ModelInfo(id=UNPRICED, pricing=Pricing()))
    client = RecordingWeaveClient()
    with pytest.warns(UserWarning, match="register_model") as record:
        ids = register_weave_costs(client, [QWEN, "acme/not-in-the-catalog", UNPRICED])
    assert ids == [QWEN]
    assert list(client.by_id()) == [QWEN]
    text = str(record[0].message)
    assert "acme/not-in-the-catalog" in text and UNPRICED in text


def test_bad_model_arguments_raise() -> None:
    client = RecordingWeaveClient()
    with pytest.raises(TypeError, match="list of model ids"):
        register_weave_costs(client, QWEN)
    with pytest.raises(ValueError, match="Malformed"):
        register_weave_costs(client, ["no-slash-here"])
    assert client.costs == []


def test_empty_list_registers_nothing() -> None:
    client = RecordingWeaveClient()
    assert register_weave_costs(client, []) == []
    assert client.costs == []


# ------------------------------------------------------------- client variations


def test_provider_and_effective_date_pass_through() -> None:
    client = RecordingWeaveClient()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    register_weave_costs(client, [QWEN], provider_id="coreweave", effective_date=when)
    assert client.costs[0]["provider_id"] == "coreweave"
    assert client.costs[0]["effective_date"] == when


def test_older_weave_without_cache_prices(caplog: pytest.LogCaptureFixture) -> None:
    client = OlderWeaveClient()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ids = register_weave_costs(client, [DS_FLASH])
    assert ids == [DS_FLASH]
    assert client.costs == [
        {
            "llm_id": DS_FLASH,
            "prompt": pytest.approx(1.4e-7),
            "completion": pytest.approx(2.8e-7),
            "provider_id": "wandb",
        }
    ]
    assert any(
        "cache-read" in r.getMessage() for r in caplog.records if r.name == LOGGER
    )


def test_kwargs_forwarding_client_gets_cache_prices() -> None:
    client = KwargsClient()
    # Not a SupportsAddCost to mypy (its parameters are hidden in **kwargs), but
    # fine at run time: the signature is read, not assumed.
    register_weave_costs(client, [DS_FLASH])  # type: ignore[arg-type]
    assert client.kwargs[0]["cache_read_input_token_cost"] == pytest.approx(7e-8)
    assert client.kwargs[0]["provider_id"] == "wandb"


def test_fake_matches_the_real_weave_signature() -> None:
    weave_client = pytest.importorskip("weave.trace.weave_client")
    real = inspect.signature(weave_client.WeaveClient.add_cost).parameters
    ours = inspect.signature(RecordingWeaveClient.add_cost).parameters
    assert list(real) == list(ours)


# ----------------------------------------------------------------- no weave needed


def test_module_never_imports_weave() -> None:
    code = """
        import sys

        class NoWeave:
            def find_spec(self, name, path=None, target=None):
                if name == "weave" or name.startswith("weave."):
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, NoWeave())
        from langchain_wandb_router import register_weave_costs

        class Client:
            def add_cost(self, llm_id, prompt_token_cost, completion_token_cost, **kw):
                print(llm_id, prompt_token_cost)

        register_weave_costs(Client(), ["Qwen/Qwen3-235B-A22B-Instruct-2507"])
        print("weave" in sys.modules)
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Qwen/Qwen3-235B-A22B-Instruct-2507 1e-07",
        "False",
    ]
