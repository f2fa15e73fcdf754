"""Values that fit a JSON schema, for tool arguments and structured outputs.

:func:`fill_schema` builds one small, deterministic instance of a schema:
``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, ``enum``/``const``, type
lists, nested objects and arrays, and the common bounds (``minimum``,
``maxLength``, ``minItems``, ``format``...). Values come from the prompt where
it offers some (numbers, quoted strings, "in <Place>"), so a test can predict
them. ``pattern`` is not followed: no regex-driven generation in the stdlib.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ArgSource", "fill_schema"]

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED_RE = re.compile(r"'([^']+)'|\"([^\"]+)\"|「([^」]+)」")
_PLACE_RE = re.compile(r"\bin ([A-Z][\w .,'-]*?)(?:[?.!]|$)")
# Past this depth a recursive schema gets its smallest value (no optional
# properties, empty arrays) so that self-referencing models end.
_MAX_DEPTH = 6
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}


class ArgSource:
    """Hands out values found in a text, each once."""

    def __init__(self, text: str) -> None:
        """Collect the numbers, quoted strings and place named in ``text``."""
        self.text = text
        self.numbers = [m.group(0) for m in _NUMBER_RE.finditer(text)]
        self.quoted = [
            next(g for g in m.groups() if g) for m in _QUOTED_RE.finditer(text)
        ]
        place = _PLACE_RE.search(text)
        self.place = place.group(1).strip() if place else None

    def number(self, integer: bool) -> int | float:
        """The next number of the text, or 1."""
        if self.numbers:
            raw = self.numbers.pop(0)
            return int(float(raw)) if integer else float(raw)
        return 1 if integer else 1.0

    def string(self, name: str, description: str) -> str:
        """The next quoted string, the place for a location, or the text."""
        if self.quoted:
            return self.quoted.pop(0)
        hint = f"{name} {description}".lower()
        if self.place and any(
            w in hint for w in ("location", "city", "place", "where")
        ):
            return self.place
        return self.text.strip()[:100] or name


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` followed and one branch of any union taken."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return _resolve({**node, **siblings}, root)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if _resolve(o, root).get("type") != "null"]
            rest = {k: v for k, v in schema.items() if k != key}
            return _resolve({**rest, **(non_null or options)[0]}, root)
    parts = schema.get("allOf")
    if parts:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            merged = _merge(merged, _resolve(part, root))
        return merged
    return schema


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Both schemas at once (``allOf``): properties and ``required`` united."""
    merged = {**left, **right}
    merged["properties"] = {
        **left.get("properties", {}),
        **right.get("properties", {}),
    }
    merged["required"] = [
        *left.get("required", []),
        *(r for r in right.get("required", []) if r not in left.get("required", [])),
    ]
    return merged


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"
    return str(kind)


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float | None, float | None]:
    """The closed range a value must fall in, exclusive bounds stepped inside."""
    low, high = schema.get("minimum"), schema.get("maximum")
    open_low, open_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    low = low if isinstance(low, int | float) else None
    high = high if isinstance(high, int | float) else None
    if integer:
        if isinstance(open_low, int | float):
            low = math.floor(open_low) + 1
        if isinstance(open_high, int | float):
            high = math.ceil(open_high) - 1
        return low, high
    # A float goes half a unit inside an open bound, less if the range is narrow.
    ends = [e for e in (open_low, low) if isinstance(e, int | float)][:1]
    ends += [e for e in (open_high, high) if isinstance(e, int | float)][:1]
    step = min(0.5, (ends[1] - ends[0]) / 4) if len(ends) == 2 else 0.5
    if isinstance(open_low, int | float):
        low = open_low + step
    if isinstance(open_high, int | float):
        high = open_high - step
    return low, high


def _bounded_number(schema: dict[str, Any], value: float, integer: bool) -> float:
    """``value`` moved inside the schema's bounds (and onto ``multipleOf``)."""
    low, high = _bounds(schema, integer)
    if low is not None and value < low:
        value = math.ceil(low) if integer else low
    if high is not None and value > high:
        value = math.floor(high) if integer else high
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if high is not None and value > high:
            value -= multiple
    return value


def _bounded_string(schema: dict[str, Any], value: str) -> str:
    """``value`` in the schema's ``format`` and length bounds."""
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        value = _FORMATS[fmt]
    longest = schema.get("maxLength")
    if isinstance(longest, int):
        value = value[:longest]
    shortest = schema.get("minLength")
    if isinstance(shortest, int) and len(value) < shortest:
        value = value + "x" * (shortest - len(value))
    return value


@dataclass(frozen=True)
class _Filler:
    """One instance being built: where values come from and how much to fill."""

    source: ArgSource
    root: dict[str, Any]
    minimal: bool

    def value(self, schema: Any, name: str, depth: int) -> Any:
        """A value for ``schema``, the property ``name`` at ``depth``."""
        schema = _resolve(schema, self.root)
        if schema.get("enum"):
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        kind = _kind(schema)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind in ("integer", "number"):
            integer = kind == "integer"
            value = _bounded_number(schema, self.source.number(integer), integer)
            return int(value) if integer else float(value)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        text = self.source.string(name, str(schema.get("description", "")))
        return _bounded_string(schema, text)

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        """``prefixItems``, then ``items`` up to one or ``minItems``."""
        prefix = schema.get("prefixItems") or []
        items = [self.value(s, name, depth + 1) for s in prefix]
        # One item shows the shape; deeper than _MAX_DEPTH only what is required.
        wanted = max(
            schema.get("minItems", 0), len(items), 0 if depth >= _MAX_DEPTH else 1
        )
        longest = schema.get("maxItems")
        if isinstance(longest, int):
            wanted = min(wanted, longest)
        while len(items) < wanted:
            items.append(self.value(schema.get("items") or {}, name, depth + 1))
        return items[:wanted]

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """The required properties, and the optional ones unless minimal."""
        props: dict[str, Any] = schema.get("properties") or {}
        required = schema.get("required")
        # A minimal instance has only the required keys; a schema that names
        # none as required is filled in full (its author expects the values).
        if (self.minimal or depth >= _MAX_DEPTH) and isinstance(required, list):
            keys = [k for k in props if k in required]
            keys += [k for k in required if k not in props]
        else:
            keys = list(props)
        return {key: self.value(props.get(key, {}), key, depth + 1) for key in keys}


def fill_schema(
    schema: Any,
    source: ArgSource,
    *,
    minimal: bool = False,
) -> Any:
    """A value of ``schema``'s shape, taking values from ``source`` where it can.

    Args:
        schema: A JSON schema (a tool's ``parameters``, a ``json_schema``);
            its ``$ref`` pointers are resolved in it.
        source: Where numbers and strings come from.
        minimal: Leave optional properties out (structured outputs); tool
            arguments keep them.

    Returns:
        A JSON-ready value that validates against ``schema`` (bar ``pattern``).
    """
    root = schema if isinstance(schema, dict) else {}
    return _Filler(source, root, minimal).value(schema, "value", 0)
