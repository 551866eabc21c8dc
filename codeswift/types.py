"""Request/result types shared by every front end (CLI, LSP, HTTP, bench)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

StopMode = Literal["none", "line", "block"]
MAX_TOKENS = 8192          # most tokens one request may ask for (long generations included)
MAX_SEED = 2**63 - 1       # sampling seeds are signed 64-bit (torch.Generator.manual_seed's range)


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
    # Contextual penalty (codeswift/penalty.py): theta 1.0 = off; window 0 = all tokens
    repetition_penalty: float = 1.0
    penalty_window: int = 0
    # Polled between decoding steps; returning True aborts with CancelledError.
    is_cancelled: Callable[[], bool] | None = None
    # Streaming: called with each new piece of the final text as tokens are accepted (their
    # concatenation is the final text); returning True ends the generation (finish "stop").
    on_text: Callable[[str], "bool | None"] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON (the native HTTP API's body); the callbacks do not travel."""
        return {**{k: getattr(self, k) for k in _REQUEST_FIELDS},
                "snippets": [{"path": s.path, "text": s.text} for s in self.snippets]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CompletionRequest":
        """The inverse of `to_json` (fields already validated, e.g. by the service's schema);
        absent fields take their defaults."""
        fields = {k: data[k] for k in _REQUEST_FIELDS if data.get(k) is not None}
        fields["snippets"] = [Snippet(s["path"], s["text"]) for s in data.get("snippets") or ()]
        return cls(**fields)


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

    @classmethod
    def from_json(cls, body: Any) -> "CompletionResult":
        """Parse `to_json`'s shape; ValueError when `body` is not one."""
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ValueError(f"not a completion result: {str(body)[:200]}")
        return cls(text=body["text"], tokens=list(body.get("tokens") or []),
                   finish_reason=str(body.get("finish_reason", "")), stats=dict(body.get("stats") or {}))


_REQUEST_FIELDS = ("prefix", "suffix", "path", "language", "max_tokens", "stop", "speculative",
                   "temperature", "top_p", "seed", "doc_id", "repetition_penalty", "penalty_window")


@dataclass
class EngineInfo:
    """What an engine tells a status line: model, device, dtype and runtime."""
    model: str
    device: str = ""
    dtype: str = ""
    backend: str = ""


class CompletionEngine(Protocol):
    """What the front ends (lsp/, service/) need from an engine, local or remote.

    Implemented by `codeswift.engine.Engine` (in process) and `lsp.remote.RemoteEngine` (a
    `codeswift serve` over HTTP). Every method blocks; front ends call them from one engine
    thread (`codeswift.worker.Worker`), never from their event loop.
    """
    info: EngineInfo
    repo_index: Any                     # the attached datastore.repo_index.RepoIndex, or None

    def complete(self, req: CompletionRequest) -> CompletionResult:
        """The completion; raises CancelledError soon after `req.is_cancelled()` turns true."""
        ...

    def warm(self, req: CompletionRequest) -> int:
        """Prefill `req`'s prompt while the editor is idle; returns the prompt tokens cached."""
        ...

    def opening_offset(self, text: str) -> int:
        """Where to warm a document just opened, when the cursor is not known yet."""
        ...

    def attach_repo(self, root: str | None) -> None:
        """Draft from (and take snippets from) the repository at `root`; None detaches."""
        ...

    def close(self) -> None:
        ...
