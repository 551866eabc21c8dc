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

    def prefill(self, tokens: list[int], key: str | None = None, logits: bool = True) -> tuple[int, int]:
        """Load `tokens` into the KV (reusing a stored prefix for `key` when possible).

        Returns (argmax next token after the last prompt token, number of prompt tokens reused).
        With `logits=False` nothing is computed for tokens already cached (all of them may be,
        and `tokens` may be empty) and the first value is -1: the loop gets the first token from
        its first verify step, whose tree root is the prompt's last token.
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

    def warm(self, tokens: list[int], key: str, is_cancelled=None, chunk: "int | WarmPacer" = 128) -> int:
        """Prefill `tokens` under `key` without generating (editor idle time); returns the
        tokens now cached. Stops early, keeping what it computed, when `is_cancelled()` is true.
        `chunk`: tokens per forward pass, or a WarmPacer that sizes each pass and hears its time."""
        ...


class WarmPacer:
    """Tokens per warm-up forward pass, adjusted by measurement: a pass of `size` tokens that
    took under half of `target_ms` doubles it, one over twice `target_ms` halves it (between
    `lo` and `hi`). Prefill costs less per token in bigger passes (2.6x less at 256 than at 16
    tokens with llama.cpp on 2 CPU cores), and a completion that arrives during a pass waits at
    most about one pass, which is work it reuses when it asks for the same prompt."""

    def __init__(self, size: int, target_ms: float | None = None, lo: int = 16, hi: int = 512):
        self.size, self.target_ms, self.lo, self.hi = max(1, int(size)), target_ms, lo, hi

    @classmethod
    def of(cls, chunk: "int | WarmPacer") -> "WarmPacer":
        return chunk if isinstance(chunk, WarmPacer) else cls(chunk)    # an int: fixed passes

    def took(self, tokens: int, seconds: float) -> None:
        """A pass of `tokens` took `seconds`: adjust the next size (only full passes count)."""
        if self.target_ms is None or tokens < self.size:
            return
        ms = seconds * 1000
        if ms < self.target_ms / 2 and self.size * 2 <= self.hi:
            self.size *= 2
        elif ms > self.target_ms * 2 and self.size // 2 >= self.lo:
            self.size //= 2
