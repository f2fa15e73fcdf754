"""The emulator's latency sampler and settings, without a server or a clock."""

from __future__ import annotations

import random
import statistics

import pytest

from langchain_wandb_router.testing import Latency, LatencyDraw
from langchain_wandb_router.testing.__main__ import (
    build_parser,
    emulator_from_args,
    latency_value,
)
from langchain_wandb_router.testing._latency import LatencyState, draw_latency

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"


def draws(state: LatencyState, model: str, count: int) -> list[LatencyDraw]:
    return [d for n in range(count) if (d := state.draw(model, n)) is not None]


# ------------------------------------------------------------------- sampler


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttft": -0.1},
        {"ttft": float("nan")},
        {"ttft": 1.0, "per_token": float("inf")},
        {"ttft": 1.0, "tail_share": 1.5},
        {"ttft": 1.0, "tail_factor": 0.5},
        {"ttft": 1.0, "jitter": -1.0},
    ],
)
def test_latency_refuses_impossible_figures(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"Latency\.\w+ must be"):
        Latency(**kwargs)


def test_without_jitter_or_tail_every_request_draws_the_figures() -> None:
    rng = random.Random(1)
    drawn = [draw_latency(Latency(0.25, 0.01), rng, n, QWEN) for n in range(50)]
    assert {(d.ttft, d.per_token, d.tail) for d in drawn} == {(0.25, 0.01, False)}
    assert [d.request for d in drawn] == list(range(50))
    assert drawn[0].answer_time(10) == pytest.approx(0.35)


def test_tail_share_over_many_draws_and_tail_requests_are_that_much_slower() -> None:
    latency = Latency(ttft=0.2, per_token=0.01, tail_share=0.05, tail_factor=8)
    rng = random.Random(42)
    drawn = [draw_latency(latency, rng) for _ in range(20_000)]
    tails = [d for d in drawn if d.tail]
    assert 0.04 <= len(tails) / len(drawn) <= 0.06
    assert all(d.ttft == pytest.approx(1.6) for d in tails)
    assert all(d.per_token == pytest.approx(0.08) for d in tails)
    assert {d.ttft for d in drawn if not d.tail} == {0.2}


def test_jitter_spreads_delays_around_the_median() -> None:
    rng = random.Random(7)
    drawn = [draw_latency(Latency(0.5, 0.02, jitter=0.3), rng) for _ in range(4001)]
    ttfts = [d.ttft for d in drawn]
    assert statistics.median(ttfts) == pytest.approx(0.5, rel=0.05)
    assert statistics.median(d.per_token for d in drawn) == pytest.approx(
        0.02, rel=0.05
    )
    assert min(ttfts) > 0
    assert len(set(ttfts)) == len(ttfts)


def test_no_tail_share_means_no_tail_and_full_share_means_all() -> None:
    rng = random.Random(3)
    assert not any(draw_latency(Latency(0.1), rng).tail for _ in range(1000))
    everyone = Latency(0.1, tail_share=1.0, tail_factor=3)
    assert all(
        draw_latency(everyone, rng).ttft == pytest.approx(0.3) for _ in range(50)
    )


# ------------------------------------------------------------------ settings


def test_same_seed_same_draws_and_another_seed_others() -> None:
    latency = Latency(0.3, 0.01, tail_share=0.2, jitter=0.5)
    first = draws(LatencyState(latency, seed=5), QWEN, 200)
    again = draws(LatencyState(latency, seed=5), QWEN, 200)
    other = draws(LatencyState(latency, seed=6), QWEN, 200)
    assert first == again
    assert [d.ttft for d in first] != [d.ttft for d in other]


def test_a_models_draws_do_not_depend_on_other_models_traffic() -> None:
    latency = Latency(0.3, 0.01, tail_share=0.2, jitter=0.5)
    alone = LatencyState(latency, seed=1)
    busy = LatencyState(latency, seed=1)
    expected = draws(alone, QWEN, 20)
    interleaved = []
    for n in range(20):
        busy.draw(LLAMA, 1000 + n)
        interleaved.append(busy.draw(QWEN, n))
    assert interleaved == expected
    assert [d.ttft for d in draws(busy, LLAMA, 5)] != [d.ttft for d in expected[:5]]


def test_per_model_settings_apply_to_that_model_only() -> None:
    state = LatencyState({LLAMA: Latency(2.0)})
    assert state.get(QWEN) is None
    assert state.draw(QWEN, 1) is None
    drawn = state.draw(LLAMA, 2)
    assert drawn is not None and drawn.ttft == 2.0
    state.set(Latency(0.5), model="*")
    assert state.get(QWEN) == Latency(0.5)
    assert state.get(LLAMA) == Latency(2.0)
    state.set(None, model=LLAMA)
    assert state.get(LLAMA) == Latency(0.5)
    state.set(None)
    assert state.get(QWEN) is None
    assert [d.request for d in state.draws()] == [2]


def test_changing_a_setting_restarts_only_its_sequences() -> None:
    latency = Latency(0.3, tail_share=0.5, jitter=0.5)
    state = LatencyState(latency, seed=9)
    qwen_first = draws(state, QWEN, 3)
    llama_first = draws(state, LLAMA, 3)
    state.set(latency, model=QWEN, seed=9)
    assert draws(state, QWEN, 3) == qwen_first
    assert draws(state, LLAMA, 3) != llama_first  # carried on, not restarted
    state.reset()
    assert state.draws() == []
    assert draws(state, LLAMA, 3) == llama_first


def test_settings_of_the_wrong_shape_are_refused() -> None:
    state = LatencyState()
    with pytest.raises(TypeError):
        state.set({QWEN: Latency(1.0)}, model=QWEN)
    with pytest.raises(TypeError):
        state.set({QWEN: 1.0})  # type: ignore[dict-item]


# -------------------------------------------------------------- command line


def test_latency_flag_values() -> None:
    assert latency_value("0.5") == Latency(0.5)
    assert latency_value("0.5,0.01,0.05,20,0.3") == Latency(0.5, 0.01, 0.05, 20, 0.3)
    for bad in ("", "x", "1,2,3,4,5,6", "-1", "0.1,0,2"):
        with pytest.raises(ValueError, match=r"float|numbers|must be"):
            latency_value(bad)


def test_latency_flags_configure_the_emulator() -> None:
    args = build_parser().parse_args(
        [
            "--latency",
            "*=0.3,0.01",
            "--latency",
            f"{LLAMA}=1.5,0.02,0.1,4",
            "--latency",
            "wandb-artifact:///team/project/lora:v1=0.1",
            "--seed",
            "7",
        ]
    )
    assert args.seed == 7
    emu = emulator_from_args(args)
    try:
        assert emu.latency_for(QWEN) == Latency(0.3, 0.01)
        assert emu.latency_for(LLAMA) == Latency(1.5, 0.02, 0.1, 4)
        assert emu.latency_for("wandb-artifact:///team/project/lora:v1") == Latency(0.1)
        expected = draws(LatencyState(Latency(1.5, 0.02, 0.1, 4), seed=7), LLAMA, 5)
        assert draws(emu.latency, LLAMA, 5) == expected
    finally:
        emu.stop()


def test_without_latency_flags_replies_are_not_paced() -> None:
    emu = emulator_from_args(build_parser().parse_args([]))
    try:
        assert emu.latency_for(QWEN) is None
    finally:
        emu.stop()


@pytest.mark.parametrize("flag", ["just-a-model", f"{QWEN}=", f"{QWEN}=0.1,x"])
def test_bad_latency_flags_are_usage_errors(flag: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--latency", flag])
