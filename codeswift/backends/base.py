"""The one small interface the speculative loop needs from a model runtime."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class ParkedKV(Protocol):
    """The prompt KV of other documents, parked for reuse (`kvreuse.KVStore`)."""

    def clear(self) -> None:
        """Forget all of it (a cold start)."""
        ...


class Backend(Protocol):
    """A model plus its KV cache for one sequence. Everything the engine, the loop, the cost
    measurement (budget.py) and the bench call on a backend is listed here.

    Invariant between calls: the KV cache holds every token of the sequence except the last
    one (the tree root), whose logits have not been computed yet.

    Not part of the protocol: drafting with the model itself (layer skipping, the `self`
    source) needs `HFBackend.draft_scope` and `skip_forward`; a backend without them (llama.cpp)
    simply has no self-drafts (`self_draft.unavailable_reason`).
    """
    name: str                          # "transformers" | "llamacpp": shown by status and info
    device: str                        # "cpu", "cuda:0", "mps", ...
    dtype: str                         # "float32", "bfloat16", or the GGUF weight type
    store: ParkedKV

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
