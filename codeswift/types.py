"""Request/result types shared by every front end (CLI, LSP, HTTP, bench)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

StopMode = Literal["none", "line", "block"]


@dataclass
class Snippet:
    """A piece of repository context placed in the prompt (path for the header, text)."""
    path: str
    text: str


@dataclass
class CompletionRequest:
    """One completion at a cursor: text before it, text after it, and what to stop on."""
    prefix: str
    suffix: str = ""
    path: str = ""
    language: str = ""
    max_tokens: int = 64
    stop: StopMode = "none"
    speculative: bool = True
    temperature: float = 0.0           # 0 = greedy (lossless w.r.t. plain greedy decoding)
    top_p: float = 1.0
    seed: int | None = None            # sampling seed (reproducible samples)
    doc_id: str | None = None          # key for per-document caches (KV reuse, preference cache)
    snippets: list[Snippet] = field(default_factory=list)
    # Polled between decoding steps; returning True aborts with CancelledError.
    is_cancelled: Callable[[], bool] | None = None


@dataclass
class CompletionResult:
    """The completion text, its token ids and per-completion statistics."""
    text: str
    tokens: list[int]
    finish_reason: str                 # "eos" | "length" | "stop"
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "tokens": self.tokens,
                "finish_reason": self.finish_reason, "stats": self.stats}
