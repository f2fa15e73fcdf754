"""The package's layout holds: layers import downward only, no cycles, one public surface.

The import graph is read from the source (every ``import`` statement, inside
functions included), so a cycle cannot hide in a deferred import. Imports
under ``if TYPE_CHECKING:`` never run, so they count for the layers (a type is
not imported upward either) but not for cycles. Sub-packages are layers; each
may import only the layers listed for it below.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from pathlib import Path

import pytest

import langchain_wandb_router

PACKAGE = Path(langchain_wandb_router.__file__).parent
ROOT = "langchain_wandb_router"
FIXTURES = Path(__file__).with_name("fixtures")

# Each layer and the layers it may import (besides itself). Root modules that
# only re-export (the package's __init__ and the kept public paths) may import
# anything; nothing in a layer imports them.
LAYERS: dict[str, set[str]] = {
    # Keeping keys out of text: below everything, errors included.
    "_secrets": set(),
    "errors": {"_secrets"},
    "transport": {"_secrets", "errors"},
    # transport is below everything but errors (its docstring); state uses
    # its hand-stepping of coroutines (transport._loops).
    "state": {"_secrets", "errors", "transport"},
    "catalog": {"_secrets", "errors", "transport"},
    "chat": {"_secrets", "errors", "transport", "catalog"},
    "router": {"_secrets", "errors", "transport", "catalog", "chat", "state"},
    "integrations": {
        "_secrets",
        "errors",
        "transport",
        "catalog",
        "chat",
        "router",
        "state",
    },
    "testing": {"_secrets", "errors", "catalog"},
    "cli": {"_secrets", "errors", "catalog", "chat", "router", "integrations", "testing"},
}
FACADES = {ROOT, f"{ROOT}.chat_model", f"{ROOT}.cost", f"{ROOT}.middleware"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """The import statements under ``if TYPE_CHECKING:``."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                found.update(ast.walk(inner))
    return found


def _imports(name: str, path: Path, *, runtime_only: bool = False) -> set[str]:
    """The package modules ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text())
    skip = _type_only(tree) if runtime_only else set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in MODULES else base)
        else:
            continue
        for target in targets:
            if target.startswith(ROOT) and target in MODULES and target != name:
                # Importing a module of one's own package does not import the
                # package's __init__ as a dependency.
                if name.startswith(target + "."):
                    continue
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}
RUNTIME = {
    name: _imports(name, path, runtime_only=True) for name, path in MODULES.items()
}


def _layer(module: str) -> str | None:
    if module in FACADES:
        return None
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer = _layer(module)
        assert module in FACADES or layer in LAYERS, f"{module} is in no layer"


def test_layers_import_downward_only() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        if layer is None:
            continue
        for target in targets:
            other = _layer(target)
            if target in FACADES:
                wrong.append(f"{module} imports the facade {target}")
            elif other != layer and other not in LAYERS[layer]:
                wrong.append(f"{module} ({layer}) imports {target} ({other})")
    assert wrong == []


def test_no_import_cycles_deferred_ones_included() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(RUNTIME[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_walk_sees_function_level_imports() -> None:
    # The factory imports the Redis state inside a function (redis-py is
    # optional); the walk still sees it.
    assert f"{ROOT}.state._redis" in RUNTIME[f"{ROOT}.state._factory"]


def test_every_public_name_resolves() -> None:
    pytest.importorskip("redis")
    pytest.importorskip("langchain.agents")
    for name in langchain_wandb_router.__all__:
        assert getattr(langchain_wandb_router, name) is not None, name
    from langchain_wandb_router import RedisState

    assert RedisState.__module__ == f"{ROOT}.state._redis"


def test_types_in_public_signatures_are_exported() -> None:
    pytest.importorskip("redis")
    pytest.importorskip("langchain.agents")
    ours = {}
    for module in MODULES:
        mod = importlib.import_module(module)
        for attr, value in vars(mod).items():
            if inspect.isclass(value) and value.__module__.startswith(ROOT):
                ours[attr] = value
    exported = set(langchain_wandb_router.__all__)
    missing = set()
    for name in langchain_wandb_router.__all__:
        value = getattr(langchain_wandb_router, name)
        members = [value] if not inspect.isclass(value) else [
            m for n, m in vars(value).items()
            if callable(m) and (not n.startswith("_") or n == "__init__")
        ]  # fmt: skip
        for member in members:
            try:
                signature = inspect.signature(member)
            except (TypeError, ValueError):
                continue
            texts = [str(p.annotation) for p in signature.parameters.values()]
            texts.append(str(signature.return_annotation))
            for text in texts:
                for word in _words(text):
                    if word in ours and word not in exported:
                        missing.add(f"{word} (in {name})")
    assert sorted(missing) == [], sorted(missing)


def _words(text: str) -> set[str]:
    word, out = "", set()
    for char in text + " ":
        if char.isalnum() or char == "_":
            word += char
        else:
            if word:
                out.add(word)
            word = ""
    return out


def test_chat_wandb_serialized_before_the_layout_loads_after_it() -> None:
    from langchain_core.load import dumps, loads

    from langchain_wandb_router import ChatWandb

    text = (FIXTURES / "chat_wandb_dumps_before_layout.json").read_text()
    key = "k" * 40
    llm = loads(
        text,
        allowed_objects=[ChatWandb],
        valid_namespaces=[ROOT],
        secrets_map={"WANDB_API_KEY": key},
    )
    assert isinstance(llm, ChatWandb)
    assert llm.model_name == "Qwen/Qwen3-235B-A22B-Instruct-2507"
    assert (llm.temperature, llm.max_tokens, llm.project) == (0.3, 256, "team/proj")
    assert llm.openai_api_key is not None
    assert llm.openai_api_key.get_secret_value() == key
    # And what is serialized now names the same id, so it loads the same way.
    assert json.loads(dumps(llm))["id"] == json.loads(text)["id"]
