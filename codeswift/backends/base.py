"""The one small interface the speculative loop needs from a model runtime."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """A model plus its KV cache for one sequence.

    Invariant between calls: the KV cache holds every token of the sequence except the last
    one (the tree root), whose logits have not been computed yet.
    """
    name: str
    device: str
    dtype: str

    def prefill(self, tokens: list[int], key: str | None = None) -> tuple[int, int]:
        """Load `tokens` into the KV (reusing a stored prefix for `key` when possible).

        Returns (argmax next token after the last prompt token, number of prompt tokens reused).
        """
        ...

    def verify(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """One forward pass over a token tree appended to the KV; returns argmax per node [n]."""
        ...

    def verify_logits(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray):
        """Like verify() but returns the float logits [n, V] (a torch tensor), for sampling."""
        ...

    def commit(self, keep: np.ndarray | int) -> None:
        """Compact the KV cache to `keep` (an int L = rows 0..L-1, or row indices)."""
        ...

    def finish(self, tokens: list[int], key: str | None) -> None:
        """The sequence is done; `tokens` are the ones whose KV is cached (for reuse under `key`)."""
        ...

    def warm(self, tokens: list[int], key: str, is_cancelled=None, chunk: int = 128) -> int:
        """Prefill `tokens` under `key` without generating (editor idle time); returns the
        tokens now cached. Stops early, keeping what it computed, when `is_cancelled()` is true."""
        ...

    # `store`: the parked prompt KV of other documents (a kvreuse.KVStore); `store.clear()`
    # forgets all of it (a cold start).
