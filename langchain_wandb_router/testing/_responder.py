"""What the emulated model says: deterministic replies from the request alone.

The rules are simple enough to predict in a test and rich enough for LangChain's
standard suites and agents: tools are called when forced or when the prompt
mentions them, arguments come from the prompt (numbers, quoted strings, "in
<place>"), structured outputs are minimal schema-valid instances, and tool
results that end the conversation are answered, never followed by the same
call again: in text, or, when a tool is required, through the structured-output
tool (``ToolStrategy``'s, named like a class), so an agent ends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_wandb_router.testing._decide import decision_answer
from langchain_wandb_router.testing._schema import ArgSource, fill_schema

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


def _tool_words(tool: dict[str, Any]) -> set[str]:
    fn = tool.get("function", {})
    words = {w.lower() for w in re.split(r"[_\W]+", fn.get("name", "")) if len(w) >= 4}
    words |= {w.lower() for w in _WORD_RE.findall(fn.get("description") or "")}
    return words


def is_output_tool(tool: dict[str, Any]) -> bool:
    """Whether ``tool`` stands for a structured output rather than an action.

    LangChain's ``ToolStrategy`` (and ``with_structured_output(method=
    "function_calling")``) bind the schema as a tool named after it: a class
    name, so capitalised, where action tools are ``snake_case`` functions.
    """
    return str(tool.get("function", {}).get("name", ""))[:1].isupper()


def _trailing_tool_results(messages: list[dict[str, Any]]) -> list[str]:
    """The text of the ``role: tool`` messages that end the conversation."""
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(text_of(message.get("content")))
    return results[::-1]


def _best(tools: list[dict[str, Any]], text: str) -> tuple[int, dict[str, Any]]:
    """The tool whose words the text mentions most, action tools first on ties."""
    lowered = text.lower()
    scored = [
        (sum(w in lowered for w in _tool_words(t)), not is_output_tool(t), -i, t)
        for i, t in enumerate(tools)
    ]
    score, _, _, tool = max(scored, key=lambda s: s[:3])
    return score, tool


def _choose_tool(
    body: dict[str, Any], text: str, answering_results: bool
) -> dict[str, Any] | None:
    """The tool to call, or ``None`` to answer in text.

    Args:
        body: The request.
        text: What the model reads for its choice (prompt, tool results).
        answering_results: The conversation ends with tool results: a model
            answers them rather than calling the same tool again, unless a
            tool is required, and then it gives its structured output if a
            schema tool is bound.
    """
    tools: list[dict[str, Any]] = [
        t for t in body.get("tools") or [] if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        return next((t for t in tools if t["function"]["name"] == wanted), tools[0])
    required = choice in ("required", "any")
    outputs = [t for t in tools if is_output_tool(t)]
    if answering_results:
        if not required:
            return None
        return _best(outputs or tools, text)[1]
    score, best = _best(tools, text)
    if score > 0:
        return best
    if required:
        # Nothing to look up: answer at once, through the schema if there is one.
        return _best(outputs, text)[1] if outputs else best
    return None


def _structured(body: dict[str, Any], text: str) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if (decided := decision_answer(fmt, text)) is not None:
        return decided  # WandbDecisions' schema: answered by _decide's rules
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        value = fill_schema(schema, ArgSource(text), minimal=True)
        return json.dumps(value, ensure_ascii=False)
    if fmt.get("type") == "json_object":
        keys = [m.group(1) for m in re.finditer(r"'(\w+)'", text)] or ["answer"]
        return json.dumps(
            {k: f"{k} about {text[:40]}".strip() for k in keys}, ensure_ascii=False
        )
    return None


def _tool_call(tool: dict[str, Any], text: str, call_id: str) -> dict[str, Any]:
    """A call of ``tool`` with arguments from ``text``; schemas get minimal ones."""
    fn = tool["function"]
    args = fill_schema(
        fn.get("parameters") or {"type": "object"},
        ArgSource(text),
        minimal=is_output_tool(tool),
    )
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": fn["name"],
            "arguments": json.dumps(args, ensure_ascii=False),
        },
    }


def _apply_limits(body: dict[str, Any], reply: Reply) -> None:
    """Cut the content at ``stop`` and at ``max_tokens`` words."""
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

    results = _trailing_tool_results(messages)
    # Answering tool results, the model reads them before the question.
    text = " ".join([*results, user_text]) if results else user_text
    tool = _choose_tool(body, text, answering_results=bool(results))
    structured = _structured(body, text)
    if tool is not None:
        reply.tool_calls = [_tool_call(tool, text, call_id)]
        reply.finish_reason = "tool_calls"
    elif structured is not None:
        reply.content = structured
    elif results:
        reply.content = f"Based on the tool result: {' '.join(results)}"
    else:
        snippet = user_text.strip()[:200] or "your message"
        reply.content = f"Hello! This is {body.get('model')} answering: {snippet}"

    _apply_limits(body, reply)
    generated = reply.content + (reply.reasoning or "") + json.dumps(reply.tool_calls)
    reply.completion_tokens = (
        count_tokens(generated) if (reply.content or reply.tool_calls) else 1
    )
    return reply
