"""Draft sources: anything that can guess how the token sequence continues.

A source gets a `DraftContext` (every token id so far: prompt + generated) and returns
candidate continuations. Sources must be cheap (≈1 ms) and thread-safe for reads; the
drafter calls them in parallel and drops late ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np


@dataclass
class DraftContext:
    """What a source sees at one decoding step."""
    tokens: Sequence[int]              # prompt + generated so far (the last one is not yet in the KV)
    prompt_len: int                    # tokens[:prompt_len] is the prompt
    doc_id: str | None = None
    path: str = ""
    language: str = ""
    step: int = 0                      # decoding step index within this completion
    max_depth: int | None = None       # draft tokens that can still be emitted (max tokens left - 1)
    is_final: Callable[[int], bool] | None = None   # a token after which nothing more is emitted
    prefix: str = ""                   # the text before the cursor, as the prompt ends it
    suffix: str = ""                   # the text after the cursor


@dataclass
class Draft:
    """A candidate continuation of `DraftContext.tokens` (not including its last token)."""
    tokens: list[int]
    score: float                       # source-local confidence, e.g. match length or count
    source: str = ""
    meta: dict = field(default_factory=dict)
    # the source's belief of per-token acceptance for drafts of its kind, used as the prior
    # until the kind has been tested (None: the drafter's general prior)
    prior: float | None = None


# Source names: one constant each (stats, reports, ablations and config use these).
CONTEXT, PREF, REPO, CORPUS, SELF = "context", "pref", "repo", "corpus", "self"


class DraftSource(Protocol):
    """The one interface every draft source implements."""
    name: str
    cheap: bool                        # answers in-memory within microseconds: asked inline, never
                                       # through the thread pool or the retrieval-timing policy

    def propose(self, ctx: DraftContext, max_len: int, max_drafts: int) -> list[Draft]:
        """Return up to `max_drafts` continuations of at most `max_len` tokens each."""
        ...

    def reset(self, ctx: DraftContext) -> None:
        """Called once per completion with the full prompt, before the first step."""
        ...

    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        """Update stage: `accepted` tokens (drafted or not) followed `ctx.tokens`. May be a no-op."""
        ...


class ContextSource:
    """Own context: continuations of the longest suffix of the tokens that occurred earlier.

    Keeps an n-gram -> positions map over prompt + output, extended incrementally as tokens
    are generated, so each query costs O(max_ngram) dict lookups.
    """

    name = CONTEXT
    cheap = True

    def __init__(self, max_ngram: int = 12, min_ngram: int = 1, max_hits: int = 16):
        self.max_ngram, self.min_ngram, self.max_hits = max_ngram, min_ngram, max_hits
        self._index: dict[tuple[int, ...], list[int]] = {}
        self._tokens: list[int] = []

    def reset(self, ctx: DraftContext) -> None:
        self._index.clear()
        self._tokens = []
        self._extend(ctx.tokens)

    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        pass                           # the next propose() extends the index from ctx.tokens

    def _extend(self, tokens: Sequence[int]) -> None:
        # Index every n-gram that ends before the last token, keyed to the position after it.
        toks = self._tokens
        for t in tokens[len(toks):] if len(tokens) > len(toks) else ():
            toks.append(int(t))
            end = len(toks) - 1          # n-grams ending at end-1 are followed by toks[end]
            for n in range(self.min_ngram, self.max_ngram + 1):
                if end - n < 0:
                    break
                self._index.setdefault(tuple(toks[end - n:end]), []).append(end)

    def propose(self, ctx: DraftContext, max_len: int, max_drafts: int) -> list[Draft]:
        if len(ctx.tokens) < len(self._tokens) or (
                self._tokens and ctx.tokens[len(self._tokens) - 1] != self._tokens[-1]):
            self.reset(ctx)            # context rewound (new completion without reset)
        self._extend(ctx.tokens)
        toks = self._tokens
        drafts: list[Draft] = []
        seen: set[tuple[int, ...]] = set()
        for n in range(min(self.max_ngram, len(toks)), self.min_ngram - 1, -1):
            hits = self._index.get(tuple(toks[-n:]))
            if not hits:
                continue
            for pos in reversed(hits[-self.max_hits:]):   # most recent occurrence first
                cont = tuple(toks[pos:pos + max_len])
                if not cont or cont in seen:
                    continue
                seen.add(cont)
                drafts.append(Draft(list(cont), score=float(n), source=self.name))
                if len(drafts) >= max_drafts:
                    return drafts
            if drafts:
                break                  # shorter matches are weaker evidence; longest wins
        return drafts


def as_int_array(tokens: Sequence[int]) -> np.ndarray:
    return np.asarray(tokens, dtype=np.int64)


def cursor_tokens(tokens: Sequence[int], prompt_len: int, special_ids: set[int]) -> tuple[list[int], list[int]]:
    """(tokens before the cursor, tokens after it) of a prompt, model-family agnostic.

    Prompts are cut at special tokens. A fill-in-the-middle prompt (PSM order, used by Qwen,
    StarCoder, DeepSeek and CodeLlama) ends with `PRE head SUF suffix MID typed`, where `typed`
    is the text already typed on the cursor line (possibly empty): before the cursor is
    head + typed, after it the suffix. A plain prompt (no special token) is all prefix."""
    pieces, cur = [], []
    for t in tokens[:prompt_len]:
        if int(t) in special_ids:
            pieces.append(cur)
            cur = []
        else:
            cur.append(int(t))
    pieces.append(cur)
    if len(pieces) >= 3:
        return pieces[-3] + pieces[-1], pieces[-2]
    return pieces[-1], []


class CursorContext:
    """The tokens a source should match: the text before the cursor, then what was generated.

    In a fill-in-the-middle prompt the tokens right before generation are the suffix and a
    special token, which never occur in a repository; the tokens that do are the prefix."""

    KEEP = 256

    def __init__(self, special_ids=()):
        self.special = set(int(t) for t in special_ids)
        self._before: list[int] = []
        self._prompt: tuple[int, int] | None = None

    def reset(self, ctx: DraftContext) -> None:
        before = (cursor_tokens(ctx.tokens, ctx.prompt_len, self.special)[0] if self.special
                  else [int(t) for t in ctx.tokens[:ctx.prompt_len]])
        self._before = before[-self.KEEP:]
        self._prompt = self._key(ctx)

    @staticmethod
    def _key(ctx: DraftContext) -> tuple[int, int]:
        n = min(ctx.prompt_len, len(ctx.tokens))
        return (n, int(ctx.tokens[n - 1]) if n else -1)

    def tokens(self, ctx: DraftContext, keep: int) -> list[int]:
        """Last `keep` tokens of (text before the cursor + generated tokens)."""
        if self._prompt != self._key(ctx):
            self.reset(ctx)                    # propose() without reset(): derive it now
        generated = [int(t) for t in ctx.tokens[ctx.prompt_len:][-keep:]]
        need = keep - len(generated)
        return (self._before[-need:] if need > 0 else []) + generated
