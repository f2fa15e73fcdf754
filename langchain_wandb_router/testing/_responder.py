"""What the emulated model says: deterministic replies from the request alone.

The rules are simple enough to predict in a test and rich enough for LangChain's
standard suites: tools are called when forced or when the prompt mentions them,
arguments come from the prompt (numbers, quoted strings, "in <place>"), JSON
schemas are filled with values of the right type, and tool results are echoed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED_RE = re.compile(r"'([^']+)'|\"([^\"]+)\"|「([^」]+)」")
_PLACE_RE = re.compile(r"\bin ([A-Z][\w .,'-]*?)(?:[?.!]|$)")
_WORD_RE = re.compile(r"[A-Za-z]{4,}")


@dataclass
class Reply:
    """One model answer before it is put on the wire."""

    content: str = ""
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def text_of(content: Any) -> str:
    """The text of a message's ``content`` (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def count_tokens(text: str) -> int:
    """The emulator's tokenizer: about four characters a token, at least one."""
    return max(1, (len(text) + 3) // 4)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {})
        return _resolve(node, root)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if options:
            non_null = [o for o in options if o.get("type") != "null"]
            return _resolve((non_null or options)[0], root)
    return schema


class _ArgSource:
    """Hands out values found in the prompt, each once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.numbers = [m.group(0) for m in _NUMBER_RE.finditer(text)]
        self.quoted = [
            next(g for g in m.groups() if g) for m in _QUOTED_RE.finditer(text)
        ]
        place = _PLACE_RE.search(text)
        self.place = place.group(1).strip() if place else None

    def number(self, integer: bool) -> int | float:
        if self.numbers:
            raw = self.numbers.pop(0)
            return int(float(raw)) if integer else float(raw)
        return 1 if integer else 1.0

    def string(self, name: str, description: str) -> str:
        if self.quoted:
            return self.quoted.pop(0)
        hint = f"{name} {description}".lower()
        if self.place and any(
            w in hint for w in ("location", "city", "place", "where")
        ):
            return self.place
        return self.text.strip()[:100] or name


def fill_schema(
    schema: dict[str, Any],
    source: _ArgSource,
    root: dict[str, Any] | None = None,
    name: str = "value",
) -> Any:
    """A value of ``schema``'s shape, taking values from the prompt where it can."""
    root = root or schema
    schema = _resolve(schema, root)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        return {key: fill_schema(sub, source, root, key) for key, sub in props.items()}
    if kind == "array":
        return [fill_schema(schema.get("items", {}), source, root, name)]
    if kind == "integer":
        return source.number(integer=True)
    if kind == "number":
        return source.number(integer=False)
    if kind == "boolean":
        return True
    return source.string(name, str(schema.get("description", "")))


def _tool_words(tool: dict[str, Any]) -> set[str]:
    fn = tool.get("function", {})
    words = {w.lower() for w in re.split(r"[_\W]+", fn.get("name", "")) if len(w) >= 4}
    words |= {w.lower() for w in _WORD_RE.findall(fn.get("description") or "")}
    return words


def _choose_tool(body: dict[str, Any], user_text: str) -> dict[str, Any] | None:
    tools: list[dict[str, Any]] = [
        t for t in body.get("tools") or [] if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        return next((t for t in tools if t["function"]["name"] == wanted), tools[0])
    lowered = user_text.lower()
    scored = [
        (sum(w in lowered for w in _tool_words(t)), i, t) for i, t in enumerate(tools)
    ]
    best_score, _, best = max(scored, key=lambda s: (s[0], -s[1]))
    if choice in ("required", "any") or best_score > 0:
        return best
    return None


def _structured(body: dict[str, Any], user_text: str) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(
            fill_schema(schema, _ArgSource(user_text)), ensure_ascii=False
        )
    if fmt.get("type") == "json_object":
        keys = [m.group(1) for m in re.finditer(r"'(\w+)'", user_text)] or ["answer"]
        return json.dumps(
            {k: f"{k} about {user_text[:40]}".strip() for k in keys}, ensure_ascii=False
        )
    return None


def build_reply(body: dict[str, Any], reasoning_on: bool, call_id: str) -> Reply:
    """Decide what the model answers to ``body``.

    Args:
        body: The decoded chat-completions request.
        reasoning_on: Whether this model thinks on this request.
        call_id: The id to give a tool call.
    """
    messages: list[dict[str, Any]] = body.get("messages") or []
    user_text = _last_user_text(messages)
    prompt_text = " ".join(text_of(m.get("content")) for m in messages)
    reply = Reply(prompt_tokens=count_tokens(prompt_text) + 4 * len(messages))
    if reasoning_on:
        reply.reasoning = (
            f"The user wrote {len(user_text.split())} words. I will answer helpfully."
        )

    last_role = messages[-1].get("role") if messages else None
    tool = (
        None
        if last_role == "tool" and body.get("tool_choice") in (None, "auto")
        else _choose_tool(body, user_text)
    )
    structured = _structured(body, user_text)
    if tool is not None:
        fn = tool["function"]
        args = fill_schema(
            fn.get("parameters") or {"type": "object"}, _ArgSource(user_text)
        )
        reply.tool_calls = [
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": fn["name"],
                    "arguments": json.dumps(args, ensure_ascii=False),
                },
            }
        ]
        reply.finish_reason = "tool_calls"
    elif structured is not None:
        reply.content = structured
    elif last_role == "tool":
        results = [
            text_of(m.get("content")) for m in messages if m.get("role") == "tool"
        ]
        reply.content = f"Based on the tool result: {results[-1]}"
    else:
        snippet = user_text.strip()[:200] or "your message"
        reply.content = f"Hello! This is {body.get('model')} answering: {snippet}"

    stops = body.get("stop")
    if isinstance(stops, str):
        stops = [stops]
    for stop in stops or []:
        cut = reply.content.find(stop)
        if stop and cut >= 0:
            reply.content = reply.content[:cut]
    limit = body.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and not reply.tool_calls:
        words = re.findall(r"\S+\s*", reply.content)
        if len(words) > limit:
            reply.content = "".join(words[:limit]).rstrip()
            reply.finish_reason = "length"
    generated = reply.content + (reply.reasoning or "") + json.dumps(reply.tool_calls)
    reply.completion_tokens = (
        count_tokens(generated) if (reply.content or reply.tool_calls) else 1
    )
    return reply
