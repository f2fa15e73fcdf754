"""WandbDecisions' reading of answers and logprobs, and the emulator's decision rules."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

pytest.importorskip("langchain_core.decisions")

from langchain_core.decisions import Choice, Noul, Score
from langchain_core.messages import AIMessage

from langchain_wandb_router.integrations import _decision_io as _decisions
from langchain_wandb_router.testing import _decide

TEAM = Choice(
    instructions="Which team?",
    criteria={"tech": "Bugs and crashes.", "billing": "Invoices and refunds."},
)


def _asked(**questions: Any) -> list[Any]:
    return [_decisions._ask(qid, q) for qid, q in questions.items()]


def _reply(content: str, tokens: list[tuple[str, list[tuple[str, float]]]]) -> AIMessage:
    logprobs = {
        "content": [
            {
                "token": token,
                "logprob": alternatives[0][1],
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives],
            }
            for token, alternatives in tokens
        ]
    }
    return AIMessage(
        content,
        response_metadata={"model_name": "m", "logprobs": logprobs, "id": "chatcmpl-1"},
        usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
    )


CONTENT = '{"team": {"answer": "tech", "probabilities": {"tech": 0.6, "billing": 0.4}}}'


def _split(content: str, at: str) -> tuple[str, str]:
    cut = content.index(at)
    return content[:cut], content[cut:]


def test_logprobs_of_the_answer_token_give_the_distribution() -> None:
    head, tail = _split(CONTENT, 'tech", "prob')
    reply = _reply(
        CONTENT,
        [
            (head, [(head, -0.01)]),
            (tail, [(tail, math.log(0.7)), ("billing", math.log(0.2)), (" the", -3)]),
        ],
    )
    response = _decisions.response_of(_asked(team=TEAM), reply, "m")
    answer = response.choices["team"]
    assert answer.probabilities == pytest.approx({"tech": 0.7 / 0.9, "billing": 0.2 / 0.9})
    assert answer.confidence == pytest.approx(0.7 / 0.9)
    assert response.response_metadata["probability_source"] == {"team": "logprobs"}
    assert response.request_id == "chatcmpl-1"


def test_a_token_with_the_opening_quote_is_read_past_it() -> None:
    head, tail = _split(CONTENT, '"tech", "prob')
    reply = _reply(
        CONTENT,
        [
            (head, [(head, -0.01)]),
            (tail, [(tail, math.log(0.5)), ('"bill', math.log(0.5))]),
        ],
    )
    answer = _decisions.response_of(_asked(team=TEAM), reply, "m").choices["team"]
    assert answer.probabilities == pytest.approx({"tech": 0.5, "billing": 0.5})


@pytest.mark.parametrize(
    ("alternatives", "why"),
    [
        ([("x", math.log(0.9))], "only junk besides the answer"),
        ([("", math.log(0.2))], "an empty token tells nothing"),
    ],
)
def test_uninformative_logprobs_fall_back_to_stated(
    alternatives: list[tuple[str, float]], why: str
) -> None:
    head, tail = _split(CONTENT, 'tech", "prob')
    reply = _reply(
        CONTENT, [(head, [(head, -0.01)]), (tail, [(tail, -0.1), *alternatives])]
    )
    response = _decisions.response_of(_asked(team=TEAM), reply, "m")
    assert response.response_metadata["probability_source"] == {"team": "stated"}, why
    assert response.choices["team"].probabilities == pytest.approx(
        {"tech": 0.6, "billing": 0.4}
    )


def test_a_token_shared_by_two_options_is_not_split() -> None:
    question = Choice(instructions="?", criteria={"fast": None, "faster": None})
    content = '{"q": {"answer": "fast", "probabilities": {"fast": 1, "faster": 3}}}'
    head, tail = _split(content, 'fast", "prob')
    reply = _reply(
        content,
        [(head, [(head, 0.0)]), (tail, [(tail, -0.1), ("fast", -1.0)])],
    )
    response = _decisions.response_of(_asked(q=question), reply, "m")
    assert response.response_metadata["probability_source"] == {"q": "stated"}
    # The answer it committed to stays, at its stated probability.
    assert response.choices["q"].choice == "fast"
    assert response.choices["q"].confidence == pytest.approx(0.25)


def test_tokens_that_do_not_spell_the_content_are_not_used() -> None:
    reply = _reply(CONTENT, [("something else", [("something else", -0.1)])])
    response = _decisions.response_of(_asked(team=TEAM), reply, "m")
    assert response.response_metadata["probability_source"] == {"team": "stated"}


def test_reasoning_tokens_before_the_content_are_skipped() -> None:
    head, tail = _split(CONTENT, 'tech", "prob')
    reply = _reply(
        CONTENT,
        [
            ("thinking... ", [("thinking... ", -0.1)]),
            (head, [(head, -0.01)]),
            (tail, [(tail, math.log(0.3)), ("billing", math.log(0.1))]),
        ],
    )
    answer = _decisions.response_of(_asked(team=TEAM), reply, "m").choices["team"]
    assert answer.confidence == pytest.approx(0.75)


def test_stated_probabilities_are_cleaned_and_normalized() -> None:
    content = json.dumps(
        {
            "n": {"answer": "yes", "probabilities": {"yes": 3, "no": -1}},
            "s": {"answer": "2", "probabilities": {"0": "x", "1": 0, "2": 0}},
        }
    )
    asked = _asked(
        n=Noul(instructions="?"), s=Score(instructions="?", criteria=["a", "b", "c"])
    )
    response = _decisions.response_of(asked, AIMessage(content), "m")
    assert response.nouls["n"].noul == 1.0
    score = response.scores["s"]
    assert score.score == 2.0
    assert score.probabilities == {0: 0.0, 1: 0.0, 2: 1.0}


def test_schema_name_is_the_one_the_emulator_answers() -> None:
    assert _decisions.SCHEMA_NAME == _decide.SCHEMA_NAME


def _format(**questions: Any) -> dict[str, Any]:
    schema = _decisions._schema(_asked(**questions))
    return {
        "type": "json_schema",
        "json_schema": {"name": _decide.SCHEMA_NAME, "strict": True, "schema": schema},
    }


def _emulated(state: str, **questions: Any) -> dict[str, Any]:
    answer = _decide.decision_answer(_format(**questions), state)
    assert answer is not None
    return dict(json.loads(answer))


def test_emulator_choice_rules() -> None:
    assert _emulated("refunds for my invoice", team=TEAM)["team"] == {
        "answer": "billing",
        "probabilities": {"tech": 0.2, "billing": 0.8},
    }
    # No shared word: an even split, the first option answered.
    assert _emulated("hello", team=TEAM)["team"]["probabilities"] == {
        "tech": 0.5,
        "billing": 0.5,
    }
    tie = Choice(instructions="?", criteria={"a": "crash", "b": "crash"})
    assert _emulated("crash", t=tie)["t"]["answer"] == "a"


def test_emulator_noul_and_score_rules() -> None:
    from langchain_core.decisions import NoulCriteria

    worded = Noul(instructions="Is the server down?")
    assert _emulated("server down again", n=worded)["n"]["answer"] == "yes"
    assert _emulated("all good", n=worded)["n"]["answer"] == "no"
    criteria = Noul(
        instructions="Risky?", criteria=NoulCriteria(true="deletes data", false="reads")
    )
    assert _emulated("it reads the file", n=criteria)["n"]["answer"] == "no"
    levels = Score(instructions="?", criteria=["calm", "upset", "furious", "rage"])
    assert _emulated("nothing", s=levels)["s"]["answer"] == "1"
    assert _emulated("I am furious", s=levels)["s"] == {
        "answer": "2",
        "probabilities": {"0": 0.1, "1": 0.1, "2": 0.7, "3": 0.1},
    }


def test_emulator_leaves_other_formats_alone() -> None:
    assert _decide.decision_answer({"type": "json_object"}, "x") is None
    other = {"type": "json_schema", "json_schema": {"name": "Joke", "schema": {}}}
    assert _decide.decision_answer(other, "x") is None
    assert _decide.decision_answer(None, "x") is None
    odd = {"type": "json_schema", "json_schema": {"name": _decide.SCHEMA_NAME}}
    assert _decide.decision_answer(odd, "x") is None
    empty = _format(team=TEAM)
    empty["json_schema"]["schema"]["properties"]["team"]["properties"][
        "probabilities"
    ]["properties"] = {}
    assert _decide.decision_answer(empty, "x") is None
