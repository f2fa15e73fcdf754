"""The emulator under load: W&B's concurrency 429, service time, outages, counters.

These talk raw httpx to the emulator so they test the emulator alone. Requests
are held in flight by an injected sleep that waits on an event, so "how many
are in flight" is decided by the test, never by the machine's speed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from langchain_wandb_router.testing import EmulatorStats, WandbEmulator
from langchain_wandb_router.testing.__main__ import build_parser, emulator_from_args

QWEN = "Qwen/Qwen3-235B-A22B-Instruct-2507"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
HOLD_LIMIT = 10.0  # a held request is let go after this long even if a test fails


def concurrency_body(model: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "rate_limit_exceeded",
            "message": f"concurrency limit reached for requests: {model}-project limit reached",
            "type": "rate_limit_error",
        }
    }


class Gate:
    """An injected sleep: records the service time asked for and holds the
    request until :meth:`open` (so it stays in flight as long as the test needs)."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._open = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self._open.wait(HOLD_LIMIT)

    def open(self) -> None:
        self._open.set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds; fail (not hang) if it never does."""
    deadline = time.monotonic() + HOLD_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.002)


def chat(
    client: httpx.Client,
    emu: WandbEmulator,
    model: str = QWEN,
    *,
    project: str | None = None,
    stream: bool = False,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    if project is not None:
        headers["OpenAI-Project"] = project
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }
    return client.post(f"{emu.base_url}/chat/completions", json=body, headers=headers)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open()  # never leave server threads parked after a failed assertion


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=HOLD_LIMIT * 2) as c:
        yield c


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as p:
        yield p


def in_flight(emu: WandbEmulator, model: str = QWEN) -> int:
    return emu.stats().in_flight_by_model.get(model, 0)


# ------------------------------------------------------------ concurrency cap


def test_cap_of_three_serves_three_and_answers_the_rest_with_wandb_429(
    gate: Gate, client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with WandbEmulator(concurrency_limit=3, service_time=0.2, sleep=gate.sleep) as emu:
        futures = [pool.submit(chat, client, emu) for _ in range(10)]
        # The 3 admitted requests are held; the 7 others are answered at once.
        wait_until(
            lambda: sum(f.done() for f in futures) == 7, "7 requests were answered"
        )
        rejected = [f.result() for f in futures if f.done()]
        held = [f for f in futures if not f.done()]
        assert len(held) == 3
        assert in_flight(emu) == 3
        for response in rejected:
            assert response.status_code == 429
            assert response.json() == concurrency_body(QWEN)
            assert "retry-after" not in response.headers  # W&B documents none
        gate.open()
        served = [f.result() for f in held]

    assert [r.status_code for r in served] == [200, 200, 200]
    assert all(r.json()["choices"][0]["message"]["content"] for r in served)
    assert gate.asked == [0.2, 0.2, 0.2]
    stats = emu.stats()
    assert stats.peak_in_flight_by_model == {QWEN: 3}
    assert stats.peak_in_flight_by_project == {("default/inference", QWEN): 3}
    assert stats.rejected == 7
    assert stats.rejected_by_model == {QWEN: 7}
    assert stats.responses_by_model == {QWEN: {200: 3, 429: 7}}
    assert stats.responses == {200: 3, 429: 7}
    assert stats.in_flight == 0
    assert stats.in_flight_by_model == {}
    # The old attribute counts every POST, the 429s included, while handled.
    assert 3 <= emu.peak_in_flight <= 10
    assert emu.in_flight == 0


def test_cap_with_a_real_service_time_never_lets_more_than_three_in(
    client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with WandbEmulator(concurrency_limit=3, service_time=0.2) as emu:
        start = threading.Barrier(10)

        def fire() -> httpx.Response:
            start.wait(HOLD_LIMIT)
            return chat(client, emu)

        responses = list(pool.map(lambda _: fire(), range(10)))

    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}
    # The first three to arrive are always admitted; any later one either found
    # the cap full (429) or a slot freed by a finished request.
    assert codes.count(200) >= 3
    for r in responses:
        if r.status_code == 429:
            assert r.json() == concurrency_body(QWEN)
    stats = emu.stats()
    assert 1 <= stats.peak_in_flight_by_model[QWEN] <= 3
    assert stats.rejected == codes.count(429)
    assert stats.responses_by_model[QWEN] == {s: codes.count(s) for s in set(codes)}


def test_each_project_has_its_own_cap(
    gate: Gate, client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with WandbEmulator(concurrency_limit=1, sleep=gate.sleep, service_time=0.01) as emu:
        held_a = pool.submit(chat, client, emu, project="team/a")
        wait_until(lambda: in_flight(emu) == 1, "team/a's request is in flight")

        second_a = chat(client, emu, project="team/a")
        assert second_a.status_code == 429
        assert second_a.json() == concurrency_body(QWEN)

        held_b = pool.submit(chat, client, emu, project="team/b")
        held_default = pool.submit(chat, client, emu)  # no header: the default project
        wait_until(
            lambda: in_flight(emu) == 3, "team/b's and the default's are in flight"
        )
        stats = emu.stats()
        assert stats.in_flight_by_project == {
            ("team/a", QWEN): 1,
            ("team/b", QWEN): 1,
            ("default/inference", QWEN): 1,
        }
        gate.open()
        assert [f.result().status_code for f in (held_a, held_b, held_default)] == [
            200
        ] * 3

    stats = emu.stats()
    assert stats.peak_in_flight_by_model == {QWEN: 3}
    assert stats.rejected_by_model == {QWEN: 1}


def test_per_model_caps_and_changing_them_at_runtime(
    gate: Gate, client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with WandbEmulator(
        concurrency_limit={"*": 2, LLAMA: 1}, service_time=0.01, sleep=gate.sleep
    ) as emu:
        assert emu.concurrency_limit_for(QWEN) == 2
        assert emu.concurrency_limit_for(LLAMA) == 1
        held: list[Future[httpx.Response]] = [
            pool.submit(chat, client, emu, QWEN),
            pool.submit(chat, client, emu, QWEN),
            pool.submit(chat, client, emu, LLAMA),
        ]
        wait_until(
            lambda: (in_flight(emu, QWEN), in_flight(emu, LLAMA)) == (2, 1),
            "three requests are held",
        )
        assert chat(client, emu, QWEN).json() == concurrency_body(QWEN)
        assert chat(client, emu, LLAMA).json() == concurrency_body(LLAMA)

        emu.set_concurrency_limit(3, model=QWEN)  # one more QWEN slot, now
        held.append(pool.submit(chat, client, emu, QWEN))
        wait_until(lambda: in_flight(emu, QWEN) == 3, "a third QWEN request is held")
        assert chat(client, emu, QWEN).status_code == 429

        emu.set_concurrency_limit(None)  # no caps at all
        assert emu.concurrency_limit_for(LLAMA) is None
        held.append(pool.submit(chat, client, emu, LLAMA))
        wait_until(lambda: in_flight(emu, LLAMA) == 2, "a second LLAMA request is held")

        emu.set_concurrency_limit(0, model="*")  # refuse everything new
        assert chat(client, emu, QWEN).status_code == 429
        gate.open()
        assert [f.result().status_code for f in held] == [200] * 5

    stats = emu.stats()
    assert stats.rejected_by_model == {QWEN: 3, LLAMA: 1}
    assert stats.peak_in_flight_by_model == {QWEN: 3, LLAMA: 2}


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        WandbEmulator(concurrency_limit=-1)
    with pytest.raises(ValueError, match="must be >= 0"):
        WandbEmulator(service_time={"*": 0.1, QWEN: -0.5})
    emu = WandbEmulator()
    try:
        with pytest.raises(TypeError):
            emu.set_concurrency_limit({QWEN: 1}, model=QWEN)
    finally:
        emu.stop()


def test_retry_after_is_off_by_default_and_settable(client: httpx.Client) -> None:
    with WandbEmulator(concurrency_limit=0) as emu:  # a cap of 0 refuses everything
        assert "retry-after" not in chat(client, emu).headers
        emu.rate_limit_retry_after = 1.5
        assert chat(client, emu).headers["retry-after"] == "1.5"
        emu.rate_limit_retry_after = 2
        response = chat(client, emu)
    assert response.headers["retry-after"] == "2"
    assert response.json() == concurrency_body(QWEN)


def test_streams_over_the_cap_get_the_json_429(client: httpx.Client) -> None:
    with WandbEmulator(concurrency_limit={LLAMA: 0}) as emu:
        refused = chat(client, emu, LLAMA, stream=True)
        served = chat(client, emu, QWEN, stream=True)
    assert refused.status_code == 429
    assert refused.json() == concurrency_body(LLAMA)
    assert served.status_code == 200
    assert served.text.rstrip().endswith("data: [DONE]")


# ------------------------------------------------------------- service time


def test_service_time_is_per_model_and_comes_before_the_first_byte(
    gate: Gate, client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    with WandbEmulator(service_time={QWEN: 0.25}, sleep=gate.sleep) as emu:
        assert emu.service_time_for(QWEN) == 0.25
        assert emu.service_time_for(LLAMA) == 0.0
        assert chat(client, emu, LLAMA).status_code == 200
        assert gate.asked == []  # no service time: not even a zero-second sleep

        headers_seen = threading.Event()

        def stream() -> str:
            headers = {"Authorization": f"Bearer {emu.api_key}"}
            body = {
                "model": QWEN,
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            }
            with client.stream(
                "POST", f"{emu.base_url}/chat/completions", json=body, headers=headers
            ) as r:
                headers_seen.set()
                return r.read().decode()

        future = pool.submit(stream)
        wait_until(lambda: gate.asked == [0.25], "the stream is being held")
        assert in_flight(emu) == 1
        # Held before the status line: the client has nothing yet.
        assert not headers_seen.is_set()
        gate.open()
        text = future.result()
    assert text.rstrip().endswith("data: [DONE]")
    assert emu.stats().responses_by_model == {QWEN: {200: 1}, LLAMA: {200: 1}}


def test_service_time_can_be_changed_per_model(
    gate: Gate, client: httpx.Client
) -> None:
    with WandbEmulator(sleep=gate.sleep) as emu:
        gate.open()  # record, do not hold
        emu.set_service_time(0.5, model=LLAMA)
        emu.set_service_time(0.125, model="*")
        chat(client, emu, LLAMA)
        chat(client, emu, QWEN)
        emu.set_service_time(0.0)
        chat(client, emu, LLAMA)
    assert gate.asked == [0.5, 0.125]


# ------------------------------------------------------------------ outages


def overloaded() -> dict[str, Any]:
    return {
        "error": {
            "code": None,
            "message": "The engine is currently overloaded, please try again later",
            "type": "server_error",
        }
    }


def test_timed_outage_answers_503_until_the_clock_passes(client: httpx.Client) -> None:
    clock = FakeClock()
    with WandbEmulator(clock=clock) as emu:
        outage = emu.outage(QWEN, seconds=30)
        assert outage.until == 1030.0
        first = chat(client, emu)
        assert first.status_code == 503
        assert first.json() == overloaded()
        assert chat(client, emu, LLAMA).status_code == 200  # other models are up

        clock.now = 1029.9
        assert chat(client, emu).status_code == 503
        clock.now = 1030.0
        recovered = chat(client, emu)
    assert recovered.status_code == 200
    stats = emu.stats()
    assert stats.responses_by_model == {QWEN: {503: 2, 200: 1}, LLAMA: {200: 1}}
    assert stats.rejected == 0  # outages are not cap rejections


def test_outage_without_a_duration_lasts_until_ended(client: httpx.Client) -> None:
    clock = FakeClock()
    with WandbEmulator(clock=clock) as emu:
        emu.outage(
            seconds=None, status=500, headers={"Retry-After": "5"}
        )  # every model
        emu.outage(LLAMA, seconds=None, status=502)
        clock.now += 1e9
        everyone = chat(client, emu, QWEN)
        assert everyone.status_code == 500
        assert everyone.headers["retry-after"] == "5"
        assert everyone.json()["error"]["message"] == (
            "The server had an error while processing your request"
        )
        # A model's own outage wins over the every-model one.
        assert chat(client, emu, LLAMA).status_code == 502

        emu.end_outage("*")
        assert chat(client, emu, QWEN).status_code == 200
        assert chat(client, emu, LLAMA).status_code == 502
        emu.end_outage(LLAMA)
        assert chat(client, emu, LLAMA).status_code == 200

        emu.outage(QWEN, seconds=None, body={"detail": "down"})
        emu.end_outage()  # all of them
        assert chat(client, emu, QWEN).status_code == 200


def test_short_real_outage_recovers(client: httpx.Client) -> None:
    with WandbEmulator() as emu:
        emu.outage(QWEN, seconds=0.2)
        assert chat(client, emu).status_code == 503
        wait_until(lambda: chat(client, emu).status_code == 200, "the outage ended")


# ----------------------------------------------------------------- counters


def test_reset_restarts_the_counters_and_ends_outages(
    gate: Gate, client: httpx.Client, pool: ThreadPoolExecutor
) -> None:
    clock = FakeClock()
    with WandbEmulator(
        concurrency_limit={LLAMA: 0},
        service_time={QWEN: 0.01},
        sleep=gate.sleep,
        clock=clock,
    ) as emu:
        held = pool.submit(chat, client, emu, QWEN, project="team/a")
        wait_until(lambda: in_flight(emu) == 1, "a request is held")
        chat(client, emu, LLAMA)  # 429
        emu.outage(QWEN, seconds=None)
        chat(client, emu, QWEN, project="team/b")  # 503

        emu.reset()
        stats = emu.stats()
        assert stats == EmulatorStats(
            in_flight=1,
            peak_in_flight=1,
            in_flight_by_model={QWEN: 1},
            peak_in_flight_by_model={QWEN: 1},  # peaks restart from what is in flight
            in_flight_by_project={("team/a", QWEN): 1},
            peak_in_flight_by_project={("team/a", QWEN): 1},
            rejected=0,
            rejected_by_model={},
            responses_by_model={},
        )
        assert emu.peak_in_flight == 1
        assert emu.concurrency_limit_for(LLAMA) == 0  # settings stay
        gate.open()
        assert held.result().status_code == 200
        assert chat(client, emu, QWEN).status_code == 200  # the outage is over

    stats = emu.stats()
    assert stats.in_flight == 0
    assert stats.responses_by_model == {QWEN: {200: 2}}


def test_stats_are_a_snapshot(client: httpx.Client) -> None:
    with WandbEmulator() as emu:
        before = emu.stats()
        chat(client, emu)
        after = emu.stats()
    assert before.responses_by_model == {}
    assert after.responses_by_model == {QWEN: {200: 1}}
    with pytest.raises(TypeError):
        after.responses_by_model[QWEN][200] = 5  # type: ignore[index]


def test_counters_stay_consistent_under_many_threads(client: httpx.Client) -> None:
    with (
        WandbEmulator(concurrency_limit=4) as emu,
        ThreadPoolExecutor(max_workers=24) as pool,
    ):
        models = [QWEN if i % 2 else LLAMA for i in range(240)]
        codes = list(pool.map(lambda m: (m, chat(client, emu, m).status_code), models))
    stats = emu.stats()
    for model in (QWEN, LLAMA):
        mine = [c for m, c in codes if m == model]
        assert stats.responses_by_model[model] == {c: mine.count(c) for c in set(mine)}
        assert stats.rejected_by_model.get(model, 0) == mine.count(429)
        assert 1 <= stats.peak_in_flight_by_model[model] <= 4
    assert stats.in_flight == 0
    assert stats.in_flight_by_project == {}
    assert emu.in_flight == 0


def test_a_client_keeping_to_the_cap_is_never_refused(client: httpx.Client) -> None:
    """The slot is free by the time the reply is read, so the next call fits."""
    with (
        WandbEmulator(concurrency_limit=4) as emu,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):

        def worker(stream: bool) -> list[int]:
            return [chat(client, emu, stream=stream).status_code for _ in range(40)]

        codes = [
            c for batch in pool.map(worker, [False, True, False, True]) for c in batch
        ]
        stats = emu.stats()
    assert codes == [200] * 160
    assert stats.rejected == 0
    assert stats.responses_by_model == {QWEN: {200: 160}}
    assert stats.in_flight == 0


def test_requests_not_admitted_are_counted_but_never_in_flight(
    client: httpx.Client,
) -> None:
    with WandbEmulator() as emu:
        assert (
            client.post(
                f"{emu.base_url}/chat/completions", json={"model": QWEN}
            ).status_code
            == 401
        )
        missing = client.post(
            f"{emu.base_url}/chat/completions",
            json={"model": QWEN, "messages": []},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        )
        assert missing.status_code == 422
        assert chat(client, emu, "no/such-model").status_code == 404
    stats = emu.stats()
    assert stats.responses_by_model == {
        QWEN: {401: 1, 422: 1},
        "no/such-model": {404: 1},
    }
    assert stats.peak_in_flight_by_model == {"no/such-model": 1}


# ---------------------------------------------------------------- command line


def test_command_line_flags_configure_the_emulator(client: httpx.Client) -> None:
    args = build_parser().parse_args(
        [
            "--concurrency-limit",
            "5",
            "--model-concurrency-limit",
            f"{LLAMA}=0",
            "--model-concurrency-limit",
            "wandb-artifact:///team/project/lora:v1=2",
            "--service-time",
            "0.0",
            "--model-service-time",
            f"{LLAMA}=0.3",
            "--retry-after",
            "3",
        ]
    )
    with emulator_from_args(args) as emu:
        assert emu.concurrency_limit_for(QWEN) == 5
        assert emu.concurrency_limit_for(LLAMA) == 0
        assert emu.concurrency_limit_for("wandb-artifact:///team/project/lora:v1") == 2
        assert emu.service_time_for(LLAMA) == 0.3
        assert emu.service_time_for(QWEN) == 0.0
        refused = chat(client, emu, LLAMA)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"


def test_command_line_rejects_a_per_model_flag_without_a_value() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model-concurrency-limit", "just-a-model"])


def test_module_serves_with_load_flags_in_another_process(client: httpx.Client) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langchain_wandb_router.testing",
            "--concurrency-limit",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        key = proc.stdout.readline().strip()
        response = client.post(
            f"{base_url}/chat/completions",
            json={"model": QWEN, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
    finally:
        proc.terminate()
        proc.wait(timeout=HOLD_LIMIT)
    assert response.status_code == 429
    assert response.json() == concurrency_body(QWEN)
