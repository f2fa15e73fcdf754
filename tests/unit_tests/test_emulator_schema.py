"""The emulator's schema instances validate, and its logprobs have OpenAI's shape."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, TypeAdapter
from typing_extensions import TypedDict

from langchain_wandb_router.testing._logprobs import content_logprobs, token_logprobs
from langchain_wandb_router.testing._schema import ArgSource, fill_schema


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=5)
    zip_code: Annotated[int, Field(gt=999, lt=10000, multiple_of=5)]


class Person(BaseModel):
    """Everything the instance generator must get right at once."""

    name: str = Field(min_length=12)
    age: int = Field(ge=18, le=30)
    score: float = Field(gt=0, lt=1)
    ratio: float = Field(gt=0.1, lt=0.11)
    role: Literal["admin", "user"]
    tags: list[str] = Field(min_length=3, max_length=4)
    home: Address
    past: list[Address] = Field(max_length=0)
    pair: tuple[int, str]
    counts: dict[str, int]
    born: datetime.date
    key: uuid.UUID
    nickname: str | None = None
    active: bool = True


class Tree(BaseModel):
    label: str
    children: list[Tree]


class Movie(TypedDict):
    title: str
    year: int


SCHEMAS: list[Any] = [Person, Tree, Movie, list[Address], Address | None]


@pytest.mark.parametrize("kind", SCHEMAS, ids=lambda k: str(k))
@pytest.mark.parametrize("minimal", [True, False])
def test_instances_validate(kind: Any, minimal: bool) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    text = "Meet 'Ana' in Lisbon, age 99, score 7, 1999 points."
    value = fill_schema(adapter.json_schema(), ArgSource(text), minimal=minimal)
    adapter.validate_python(value)


def test_minimal_instances_keep_required_keys_only() -> None:
    schema = Person.model_json_schema()
    minimal = fill_schema(schema, ArgSource("x"), minimal=True)
    full = fill_schema(schema, ArgSource("x"))
    assert "nickname" not in minimal and "active" not in minimal
    assert set(full) == set(Person.model_fields)
    assert set(minimal) == set(schema["required"])


def test_values_come_from_the_text_and_repeat() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "budget": {"type": "number"},
            "name": {"type": "string"},
        },
        "required": ["city", "days", "budget", "name"],
    }
    text = "Plan 'Lisbon trip' for 4 days on 1200.5 euros in Porto."
    value = fill_schema(schema, ArgSource(text), minimal=True)
    assert value == {"city": "Lisbon trip", "days": 4, "budget": 1200.5, "name": text}
    assert fill_schema(schema, ArgSource(text), minimal=True) == value


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 2.5}, 1),
        ({"type": "integer", "minimum": 3, "multipleOf": 4}, 4),
        ({"type": "number", "exclusiveMinimum": 2, "maximum": 2.5}, 2.125),
        ({"type": "string", "format": "date-time", "maxLength": 10}, "2026-01-01"),
        ({"type": ["null", "boolean"]}, True),
        ({"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"const": 7}}}, 7),
    ],
)
def test_bounds_and_keywords(schema: dict[str, Any], expected: Any) -> None:
    assert fill_schema(schema, ArgSource("no numbers here")) == expected


def test_recursive_schemas_end() -> None:
    value = fill_schema(Tree.model_json_schema(), ArgSource("t"))
    depth = 0
    while value["children"]:
        value, depth = value["children"][0], depth + 1
    assert 0 < depth < 10


def test_token_logprobs_have_openais_shape() -> None:
    item = token_logprobs("Hello ", 20)
    assert set(item) == {"token", "logprob", "bytes", "top_logprobs"}
    top = item["top_logprobs"]
    assert len(top) == 20 and len({t["token"] for t in top}) == 20
    assert top[0] == {k: item[k] for k in ("token", "logprob", "bytes")}
    assert [t["logprob"] for t in top] == sorted(
        (t["logprob"] for t in top), reverse=True
    )
    assert all(t["bytes"] == list(t["token"].encode()) for t in top)
    assert token_logprobs("Hello ", 0)["top_logprobs"] == []
    assert token_logprobs("é", 1)["bytes"] == [0xC3, 0xA9]


def test_content_logprobs_split_the_text_into_its_tokens() -> None:
    text = "Hello there,  world"
    content = content_logprobs(text, 1)["content"]
    assert "".join(t["token"] for t in content) == text
    assert content_logprobs(text, 1) == content_logprobs(text, 1)
    assert content_logprobs("", 3) == {"content": []}
