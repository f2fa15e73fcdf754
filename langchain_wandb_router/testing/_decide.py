"""The emulator's answers to decision requests: deterministic, from the input alone.

A request is a decision request when its ``response_format`` is the strict
``json_schema`` named ``wandb_decisions`` (what ``WandbDecisions`` sends): one
property per question, titled ``choice``, ``noul`` or ``score``, each with an
``answer`` (an enum of option labels) and a probability per option, option
descriptions in the schema. The rules, on words of four letters or more
(lower-cased, a plural ``s`` dropped), read in the state (the last user
message):

* choice: the option whose label and description share most words with the
  state, stated at 0.8, the rest sharing 0.2; ties go to the first such
  option, and with no shared word at all every option gets the same share
  (the first is answered), so an unsure answer can be provoked;
* noul: with descriptions, "yes" when the state shares more words with the
  yes description than the no one, "no" when fewer; otherwise (or on a tie)
  "yes" when at least half the question's words are in the state. Stated at
  0.9 for the answer;
* score: the level whose description shares most words with the state,
  else the middle level (lower middle for an even count); stated at 0.7.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEMA_NAME", "decision_answer"]

SCHEMA_NAME = "wandb_decisions"
_WORD_RE = re.compile(r"[a-z0-9]+")


def decision_answer(response_format: Any, state: str) -> str | None:
    """The JSON answer to a decision request, or ``None`` if it is not one.

    Args:
        response_format: The request's ``response_format``.
        state: The text the questions are about (the last user message).
    """
    if not isinstance(response_format, Mapping):
        return None
    spec = response_format.get("json_schema")
    if response_format.get("type") != "json_schema" or not isinstance(spec, Mapping):
        return None
    if spec.get("name") != SCHEMA_NAME:
        return None
    words = _words(state)
    try:
        properties = spec["schema"]["properties"]
        answers = {qid: _answer(q, words) for qid, q in properties.items()}
    except (KeyError, TypeError, AttributeError, ValueError):
        return None  # not the shape WandbDecisions sends: a generic instance
    return json.dumps(answers, ensure_ascii=False)


def _words(text: str) -> set[str]:
    found = set()
    for word in _WORD_RE.findall(text.lower()):
        if len(word) >= 4:
            found.add(word[:-1] if len(word) > 4 and word.endswith("s") else word)
    return found


def _options(question: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, description)`` of each option, in the schema's order."""
    probabilities = question["properties"]["probabilities"]["properties"]
    return [
        (label, str(schema.get("description") or ""))
        for label, schema in probabilities.items()
    ]


def _answer(question: Mapping[str, Any], words: set[str]) -> dict[str, Any]:
    options = _options(question)
    if not options:
        raise ValueError("a question without options")
    kind = question.get("title")
    if kind == "noul":
        label, share = _noul(question, options, words), 0.9
    elif kind == "score":
        label, share = _score(options, words), 0.7
    else:
        label, share = _choice(options, words)
    rest = (1.0 - share) / (len(options) - 1) if len(options) > 1 else 0.0
    return {
        "answer": label,
        "probabilities": {
            name: round(share if name == label else rest, 4) for name, _ in options
        },
    }


def _overlap(text: str, words: set[str]) -> int:
    return len(_words(text) & words)


def _choice(options: list[tuple[str, str]], words: set[str]) -> tuple[str, float]:
    scores = [_overlap(f"{label} {text}", words) for label, text in options]
    best = max(scores)
    if best == 0:
        return options[0][0], 1.0 / len(options)
    return options[scores.index(best)][0], 0.8 if len(options) > 1 else 1.0


def _noul(
    question: Mapping[str, Any], options: list[tuple[str, str]], words: set[str]
) -> str:
    described = dict(options)
    yes = _overlap(described.get("yes", ""), words)
    no = _overlap(described.get("no", ""), words)
    if yes != no:
        return "yes" if yes > no else "no"
    asked = _words(str(question.get("description") or ""))
    return "yes" if asked and 2 * len(asked & words) >= len(asked) else "no"


def _score(options: list[tuple[str, str]], words: set[str]) -> str:
    scores = [_overlap(text, words) for _, text in options]
    best = max(scores)
    if best == 0:
        return options[(len(options) - 1) // 2][0]
    return options[scores.index(best)][0]
