"""The emulator's prefix cache: what ``usage.prompt_tokens_details.cached_tokens`` says.

W&B's backends (vLLM) keep the blocks of recent prompts and reuse a new
prompt's longest cached prefix; ``cache_salt`` keeps tenants apart. The
emulator's model of it, deterministic so tests can predict every figure:

* Tokens: the prompt as ``prompt_tokens`` counts it. Each message opens with
  four framing tokens (its role, ``name``, ``tool_call_id`` and a digest of its
  other fields: tool calls, non-text parts), followed by the four-character
  pieces of the messages' texts joined by spaces, each piece in the message it
  starts in. So there are exactly ``prompt_tokens`` of them.
* Blocks: whole blocks of ``block`` tokens, each keyed by a hash chained from
  the previous block's; the chain starts from the salt and the request's
  ``tools`` (chat templates render tools first). A partial last block is never
  cached, so prompts shorter than a block report nothing.
* Reuse: the leading blocks already held for ``(model, salt)`` and fitting in
  all but the prompt's last token (vLLM computes that one again for its
  logits): an identical repeat of a 40-token prompt reports 32 with 16-token
  blocks, and one of 32 tokens reports 16.
* Expiry and memory: a block unused for ``ttl`` seconds on the emulator's
  clock is gone; a model holds at most ``capacity`` blocks, the least recently
  used dropped first (a prompt's blocks are refreshed last block first, so a
  chain loses its tail before its head, as vLLM frees them).
* Models: those whose catalog entry has a cache-read price, unless ``models``
  names them (``"*"``: all). Others report no ``prompt_tokens_details``, as do
  misses: vLLM omits a zero.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from langchain_wandb_router.testing._responder import count_tokens, text_of

if TYPE_CHECKING:
    from langchain_wandb_router.catalog._models import ModelInfo

__all__ = [
    "CacheLookup",
    "CacheSettings",
    "PrefixCache",
    "PrefixCacheControls",
    "PrefixCacheStats",
    "cache_salt_error",
    "prompt_token_list",
]

DEFAULT_TTL = 600.0
DEFAULT_BLOCK = 16  # vLLM's default block size
DEFAULT_CAPACITY = 4096  # blocks per model: 64k tokens at the default block
_CHARS_PER_TOKEN = 4  # the emulator's tokenizer (``_responder.count_tokens``)
_FRAMED = ("role", "content", "name", "tool_call_id")
_FRAMING = 4  # tokens opening each message, as ``build_reply`` counts them
_SALT_ERROR = "Parameter 'cache_salt' must be a non-empty string if provided."


@dataclass(frozen=True)
class CacheSettings:
    """How the emulator's prefix cache behaves.

    Attributes:
        enabled: Whether prompts are cached and reuse reported at all.
        ttl: Seconds on the emulator's clock a block lives unused.
        block: Tokens per block; reuse is reported in whole blocks.
        capacity: Most blocks held per model; least recently used go first.
        models: Model ids that cache (``"*"``: all), or ``None`` for those
            whose catalog entry has a cache-read price.
    """

    enabled: bool = True
    ttl: float = DEFAULT_TTL
    block: int = DEFAULT_BLOCK
    capacity: int = DEFAULT_CAPACITY
    models: frozenset[str] | None = None

    def __post_init__(self) -> None:
        """Refuse settings that cannot cache anything sensibly.

        Raises:
            ValueError: ``ttl`` not positive, ``block`` or ``capacity`` below 1.
        """
        if not self.ttl > 0:
            raise ValueError(f"cache ttl must be positive, got {self.ttl!r}")
        if self.block < 1 or self.capacity < 1:
            raise ValueError("cache block and capacity must be at least 1")

    def caches(self, info: ModelInfo) -> bool:
        """Whether ``info``'s model caches prefixes and reports them."""
        if not self.enabled:
            return False
        if self.models is None:
            return info.pricing.cache_read is not None
        return "*" in self.models or info.id in self.models


@dataclass(frozen=True)
class CacheLookup:
    """One successful chat reply as the prefix cache saw it.

    Attributes:
        request: The request's number (as in its ``chatcmpl-`` id).
        model: The model id.
        salt: The request's ``cache_salt`` (``None``: none), recorded for
            every model, caching or not.
        prompt_tokens: The prompt's tokens.
        cached_tokens: Tokens the cache found (0 for models that do not
            cache); the emulator's ``cached_tokens`` attribute may override
            what the reply reports.
    """

    request: int
    model: str
    salt: str | None
    prompt_tokens: int
    cached_tokens: int


@dataclass(frozen=True)
class PrefixCacheStats:
    """A snapshot of the prefix cache's counters, per model id.

    Attributes:
        lookups: Replies of caching models looked up in the cache.
        hits: Those that found at least one block.
        cached_tokens: Tokens found, summed.
        blocks: Blocks held now (expired ones not counted).
        evicted: Blocks dropped to stay within the capacity.
        expired: Blocks dropped for going unused for the TTL.
    """

    lookups: Mapping[str, int] = field(default_factory=dict)
    hits: Mapping[str, int] = field(default_factory=dict)
    cached_tokens: Mapping[str, int] = field(default_factory=dict)
    blocks: Mapping[str, int] = field(default_factory=dict)
    evicted: Mapping[str, int] = field(default_factory=dict)
    expired: Mapping[str, int] = field(default_factory=dict)


def cache_salt_error(body: dict[str, Any]) -> str | None:
    """Why the request's ``cache_salt`` is refused (W&B's 400), or ``None``.

    ``null`` is the same as no salt; anything else must be a non-empty string.
    """
    salt = body.get("cache_salt")
    if salt is None or (isinstance(salt, str) and salt):
        return None
    return _SALT_ERROR


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _framing(message: dict[str, Any]) -> list[str]:
    """A message's four opening tokens: role, name, tool call id, the rest."""
    content = message.get("content")
    # Images and other parts are not counted as text, but they are prompt.
    parts = (
        [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
        if isinstance(content, list)
        else []
    )
    rest = {k: v for k, v in message.items() if k not in _FRAMED}
    # _FRAMING of them: the role, name, tool call id and the rest's digest.
    return [
        f"<|{message.get('role')}|>",
        str(message.get("name") or ""),
        str(message.get("tool_call_id") or ""),
        _digest([rest, parts]),
    ]


def prompt_token_list(messages: list[dict[str, Any]]) -> list[str]:
    """The prompt's tokens, as many as the reply's ``prompt_tokens``.

    Args:
        messages: The request's messages.

    Returns:
        Framing tokens and text pieces, message by message.
    """
    texts = [text_of(m.get("content")) for m in messages]
    joined = " ".join(texts)
    step = _CHARS_PER_TOKEN
    # An empty text still counts as one token, as count_tokens has it.
    pieces = [joined[i : i + step] for i in range(0, len(joined), step)] or [""]
    tokens: list[str] = []
    taken, start = 0, 0
    for message, text in zip(messages, texts, strict=True):
        start += len(text) + 1  # where the next message's text starts
        tokens += _framing(message)
        while taken < len(pieces) and taken * step < start:
            tokens.append(pieces[taken])
            taken += 1
    return tokens + pieces[taken:]


def block_hashes(tokens: list[str], block: int, root: str) -> list[bytes]:
    """The chained hash of each whole block of ``tokens``.

    Args:
        tokens: The prompt's tokens.
        block: Tokens per block.
        root: What every chain starts from (salt and tools).

    Returns:
        One hash per whole block; equal hashes mean equal prefixes.
    """
    hashes: list[bytes] = []
    previous = root.encode()
    for end in range(block, len(tokens) + 1, block):
        piece = json.dumps(tokens[end - block : end], ensure_ascii=False).encode()
        previous = hashlib.blake2b(previous + piece, digest_size=16).digest()
        hashes.append(previous)
    return hashes


class PrefixCache:
    """The blocks held per model, their last use, and what lookups found."""

    def __init__(self, settings: CacheSettings, clock: Callable[[], float]) -> None:
        """Start empty.

        Args:
            settings: How to cache.
            clock: Monotonic seconds; the TTL is timed on it.
        """
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        # model -> block hash -> last use, least recently used first.
        self._blocks: dict[str, OrderedDict[bytes, float]] = {}
        self._lookups: list[CacheLookup] = []
        self._looked: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()
        self._found: Counter[str] = Counter()
        self._evicted: Counter[str] = Counter()
        self._expired: Counter[str] = Counter()

    def configure(self, settings: CacheSettings) -> None:
        """Use ``settings`` from now on; a new block size empties the cache."""
        with self._lock:
            if settings.block != self.settings.block:
                self._blocks.clear()
            self.settings = settings

    def clear(self) -> None:
        """Forget every block, lookup and counter."""
        with self._lock:
            self._blocks.clear()
            self._lookups.clear()
            for counter in self._counters():
                counter.clear()

    def _counters(self) -> tuple[Counter[str], ...]:
        return self._looked, self._hits, self._found, self._evicted, self._expired

    def lookup(self, info: ModelInfo, body: dict[str, Any], request: int) -> int:
        """Tokens of ``body``'s prompt found in the cache; the prompt is kept.

        Args:
            info: The model answering.
            body: The chat request (``cache_salt`` already checked).
            request: The request's number, for :meth:`lookups`.

        Returns:
            Cached prompt tokens, a multiple of the block size (0: none).
        """
        settings = self.settings
        salt = body.get("cache_salt")
        messages: list[dict[str, Any]] = body.get("messages") or []
        caching = settings.caches(info)
        found = 0
        if caching:
            tokens = prompt_token_list(messages)
            root = _digest([salt, body.get("tools")])
            hashes = block_hashes(tokens, settings.block, root)
            usable = (len(tokens) - 1) // settings.block
            found = self._reuse(info.id, hashes, usable) * settings.block
            length = len(tokens)
        else:
            # No tokens to hash: the count alone, as the reply has it.
            text = " ".join(text_of(m.get("content")) for m in messages)
            length = count_tokens(text) + _FRAMING * len(messages)
        record = CacheLookup(request, info.id, salt, length, found)
        with self._lock:
            self._lookups.append(record)
            if caching:
                self._looked[info.id] += 1
                self._hits[info.id] += int(found > 0)
                self._found[info.id] += found
        return found

    def _reuse(self, model: str, hashes: list[bytes], usable: int) -> int:
        """How many leading ``hashes`` (of the first ``usable``) are held; keep all."""
        capacity = self.settings.capacity
        with self._lock:
            now = self._clock()
            blocks = self._blocks.setdefault(model, OrderedDict())
            self._expire(model, blocks, now)
            held = 0
            while held < min(usable, len(hashes)) and hashes[held] in blocks:
                held += 1
            # Last block first, so the head of a chain stays longest.
            for key in reversed(hashes):
                blocks[key] = now
                blocks.move_to_end(key)
            while len(blocks) > capacity:
                blocks.popitem(last=False)
                self._evicted[model] += 1
            return held

    def _expire(
        self, model: str, blocks: OrderedDict[bytes, float], now: float
    ) -> None:
        """Drop ``model``'s blocks unused for the TTL (call with the lock held)."""
        ttl = self.settings.ttl
        # Blocks are ordered by last use, so the expired ones lead.
        while blocks:
            key, used = next(iter(blocks.items()))
            if used + ttl > now:
                return
            del blocks[key]
            self._expired[model] += 1

    def lookups(self) -> list[CacheLookup]:
        """Every lookup since start or the last clear, oldest first."""
        with self._lock:
            return list(self._lookups)

    def stats(self) -> PrefixCacheStats:
        """The counters now, expired blocks dropped first."""
        with self._lock:
            now = self._clock()
            for model, blocks in self._blocks.items():
                self._expire(model, blocks, now)
            return PrefixCacheStats(
                lookups=MappingProxyType(dict(self._looked)),
                hits=MappingProxyType(dict(self._hits)),
                cached_tokens=MappingProxyType(dict(self._found)),
                blocks=MappingProxyType(
                    {m: len(b) for m, b in self._blocks.items() if b}
                ),
                evicted=MappingProxyType(dict(self._evicted)),
                expired=MappingProxyType(dict(self._expired)),
            )


class PrefixCacheControls:
    """The emulator's prefix cache: its setting, counters and lookups."""

    if TYPE_CHECKING:
        prefix_cache: PrefixCache
        cached_tokens: int

    def set_prefix_cache(
        self,
        enabled: bool = True,
        *,
        ttl: float = DEFAULT_TTL,
        block: int = DEFAULT_BLOCK,
        capacity: int = DEFAULT_CAPACITY,
        models: Iterable[str] | None = None,
    ) -> None:
        """Replace the whole prefix-cache setting (omitted arguments: defaults).

        Blocks already held stay (a new ``block`` size empties the cache), and
        expire by the new ``ttl``.

        Args:
            enabled: Cache and report reuse at all.
            ttl: Seconds on the emulator's clock a block lives unused.
            block: Tokens per block; reuse is reported in whole blocks, so
                prompts shorter than a block report nothing (1: every token).
            capacity: Most blocks held per model, least recently used dropped.
            models: Model ids that cache (``"*"``: every model), or ``None``
                for those whose catalog entry has a cache-read price.

        Raises:
            ValueError: ``ttl`` not positive, ``block`` or ``capacity`` below 1.
        """
        chosen = None if models is None else frozenset(models)
        settings = CacheSettings(enabled, ttl, block, capacity, chosen)
        self.prefix_cache.configure(settings)

    @property
    def prefix_cache_settings(self) -> CacheSettings:
        """The prefix cache's setting now."""
        return self.prefix_cache.settings

    def cache_stats(self) -> PrefixCacheStats:
        """The prefix cache's counters per model: lookups, hits, blocks held."""
        return self.prefix_cache.stats()

    def cache_lookups(self) -> list[CacheLookup]:
        """What the cache found for each successful chat reply, oldest first."""
        return self.prefix_cache.lookups()

    def clear_prefix_cache(self) -> None:
        """Forget every cached block, lookup and cache counter."""
        self.prefix_cache.clear()

    def cached_tokens_for(
        self, info: ModelInfo, body: dict[str, Any], request: int
    ) -> int:
        """The ``cached_tokens`` a reply reports; the prompt is cached meanwhile.

        A non-zero :attr:`cached_tokens` attribute overrides the cache for
        every model (the cache still sees the prompt).
        """
        found = self.prefix_cache.lookup(info, body, request)
        return self.cached_tokens or found
