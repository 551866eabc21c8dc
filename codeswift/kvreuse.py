"""Prompt KV cache that survives between completions (LRU by bytes).

An editor asks again after nearly every keystroke and successive prompts share almost all of
their tokens, so the KV of the longest common token prefix is reused and only the rest is
prefilled. Entries are keyed (e.g. per document); a request may also borrow the best entry of
another key, which is then cloned so the owner keeps its own.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class KVEntry:
    tokens: np.ndarray      # token ids whose KV rows the cache holds, in order
    cache: Any              # backend-specific cache object
    nbytes: int


def common_prefix_len(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(a[:n] != b[:n])[0]
    return int(diff[0]) if len(diff) else n


class KVStore:
    """Bounded store of prompt KV caches. Not thread-safe: the engine serialises completions."""

    def __init__(self, max_bytes: int, clone: Callable[[Any], Any]):
        self.max_bytes = max_bytes
        self._clone = clone
        self._entries: "OrderedDict[str, KVEntry]" = OrderedDict()
        self.hits = self.misses = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, key: str | None, tokens: np.ndarray) -> tuple[Any, int] | None:
        """Best cache for `tokens`: (cache, reusable prefix length), or None.

        The entry stored under `key` is handed over (removed); another key's entry is cloned.
        """
        best_key, best_len = None, 0
        for k, e in self._entries.items():
            n = common_prefix_len(e.tokens, tokens)
            if n > best_len or (n == best_len and n > 0 and k == key):
                best_key, best_len = k, n
        if best_key is None:
            self.misses += 1
            return None
        self.hits += 1
        if best_key == key:
            return self._entries.pop(key).cache, best_len
        self._entries.move_to_end(best_key)
        return self._clone(self._entries[best_key].cache), best_len

    def put(self, key: str, tokens: np.ndarray, cache: Any, nbytes: int) -> None:
        self._entries.pop(key, None)
        if nbytes > self.max_bytes:
            return
        self._entries[key] = KVEntry(np.asarray(tokens, np.int64), cache, nbytes)
        while self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)        # least recently used first

    def clear(self) -> None:
        self._entries.clear()
