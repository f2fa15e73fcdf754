"""Tool choice and JSON structured output for chat models routed over W&B.

Shared by WandbRouter; the parsing is the same whichever model serves, because
every W&B route speaks Chat Completions' ``response_format``.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import (
    convert_to_openai_function,
    convert_to_openai_tool,
)
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = [
    "json_structured_output",
    "normalize_tool_choice",
    "parse_structured",
    "response_format_for",
    "schema_spec",
]


def json_structured_output(
    model: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    method: str,
    include_raw: bool,
    strict: bool | None,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, Any]:
    """Bind ``model`` to a JSON response format and parse what it returns.

    With ``include_raw=True`` the raw message is kept even when parsing fails
    (``parsed`` is then ``None`` and ``parsing_error`` says why).
    """
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    if method == "json_mode":
        response_format: Any = {"type": "json_object"}
    elif method == "json_schema":
        if isinstance(schema, type):
            response_format = response_format_for(schema, strict)
        elif "json_schema" in schema:
            response_format = schema
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": schema_spec(schema, strict),
            }
    else:
        msg = (
            f"Unknown method {method!r}: use 'json_schema', 'json_mode' or "
            "'function_calling'."
        )
        raise ValueError(msg)
    llm = model.bind(
        response_format=response_format,
        ls_structured_output_format={
            "kwargs": {"method": method, "strict": strict},
            "schema": convert_to_openai_tool(schema),
        },
        **kwargs,
    )
    parser: Runnable[Any, Any] = (
        PydanticOutputParser(pydantic_object=schema)
        if is_pydantic
        else JsonOutputParser()
    )
    if include_raw:
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        none = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [none], exception_key="parsing_error"
        )
    return llm | parser


def normalize_tool_choice(choice: dict[str, Any] | str | bool) -> dict[str, Any] | str:
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice  # type: ignore[return-value]


def schema_spec(schema: Mapping[str, Any], strict: bool | None) -> dict[str, Any]:
    tool = convert_to_openai_tool(schema, strict=strict)["function"]
    spec: dict[str, Any] = {"name": tool["name"], "schema": tool["parameters"]}
    if strict is not None:
        spec["strict"] = strict
    return spec


def response_format_for(schema: type, strict: bool | None) -> dict[str, Any]:
    """A pydantic class as a Chat Completions ``json_schema`` response format."""
    function = convert_to_openai_function(schema, strict=strict)
    spec: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
    if function.get("description"):
        spec["description"] = function["description"]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def parse_structured(schema: type, text: str) -> Any | None:
    """The parsed pydantic object, or ``None`` if the text does not fit."""
    try:
        return schema.model_validate_json(text)  # type: ignore[attr-defined]
    except ValueError:
        return None
