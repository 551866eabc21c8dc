"""Preference-aware cache: what the model itself wrote before, as drafts for what it writes next.

While a developer types, consecutive completions overlap heavily: the model's last output (and
the parts of it that were accepted) predicts the next one almost token for token. `PrefCache`
remembers every token run the model produced (`observe()` sees each accepted run), keyed by
the hash of the `n` tokens before each position for several `n`, in two scopes: the document
(`ctx.doc_id`) and the whole session. `propose()` looks up the current context, longest `n`
first, document scope before session scope, and ranks entries by how often the model produced
or accepted them minus how often they mispredicted, then by recency.

Remembered answers: with a `Detokenizer`, each completion is also kept as text, keyed by the
text before and after the cursor (`CompletionCache`, the LSP's notion of "the rest of the
last answer"). A later request whose text before the cursor is that text plus the start of
the answer (the developer accepted or typed it since), with the same text after, gets the
rest of the answer as one draft, even when the typing ended inside one of its tokens (the
characters left of that token are re-tokenised, the model's own tokens follow). Its score
(`ANSWER_SCORE`) puts it in a kind of its own, whose acceptance is learned per depth: such
drafts survive whole or not at all, and where the cost curve allows, the rest of the answer
is verified in one step.

Keys use Python's hash of int tuples, which is not salted per process. Memory is bounded by entry count and bytes, evicting least-recently-used keys. Call
`invalidate(doc_id)` when a document changed far from the cursor (its entries may be stale);
with `contains=` only entries whose tokens include that run (e.g. deleted text) are dropped.

    cache = PrefCache(ngram_sizes=(8, 4, 2), max_entries=50_000, max_bytes=32 << 20)
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

from codeswift.completion_cache import CompletionCache, Entry as Answer
from codeswift.sources import PREF, CursorContext, Draft, DraftContext

_ENTRY_OVERHEAD = 120          # bytes per entry besides its tokens (object, list slot, ints)
ANSWER_SCORE = 24.0            # a remembered answer's draft score: above any n-gram match
# Prior per-token acceptance of a remembered answer's rest, until learned: it is the model's own
# answer to the same prompt less what was typed since. Measured (accept-along sessions, 24
# requests, transformers bf16): 13 of 18 answers shown from the LSP cache were still the model's
# answer, most of them whole; the per-depth rates are learned from there.
ANSWER_PRIOR = 0.9


@dataclass(frozen=True)
class Detokenizer:
    """Text of token ids and ids of text, as the model's tokenizer does them."""
    decode: Callable[[Sequence[int]], str]
    encode: Callable[[str], Sequence[int]]

    def rest(self, answer: Answer, typed: int, stop_ids: frozenset[int] = frozenset()) -> list[int]:
        """The tokens of `answer` after its first `typed` characters: the characters that are
        left of the token the typing ended in, re-tokenised, then the model's own tokens."""
        toks = list(answer.tokens)
        if typed == 0:
            return toks
        for i in range(1, len(toks) + 1):
            n = len(self.decode(toks[:i]))
            if n >= typed:
                head = answer.text[typed:n]
                return ([int(t) for t in self.encode(head)] if head else []) + toks[i:]
        return []


@dataclass
class _Entry:
    tokens: tuple[int, ...]
    count: int = 1             # times the model produced it, plus times it was accepted as a draft
    misses: int = 0            # times proposed and its first token was not what the model chose
    last: int = 0              # clock (completion number) of last production or acceptance

    def size(self) -> int:
        return _ENTRY_OVERHEAD + 8 * len(self.tokens)

    def rank(self) -> tuple[int, int]:
        return (self.count - self.misses, self.last)


@dataclass
class _Completion:
    """The stream of one completion: prompt tail, then every accepted token."""
    doc_id: str | None
    tokens: list[int] = field(default_factory=list)
    generated_from: int = 0
    prefix: str = ""
    suffix: str = ""
    answer_from: int = 0       # where the answer starts in `tokens` (its first token, the root)


class PrefCache:
    """DraftSource over the model's own previous outputs in this session (see module doc)."""

    name = PREF
    cheap = True

    def __init__(self, ngram_sizes: Sequence[int] = (8, 4, 2), max_cont: int = 64,
                 per_key: int = 4, max_entries: int = 50_000, max_bytes: int = 32 << 20,
                 special_ids: Sequence[int] = (), text: Detokenizer | None = None,
                 answers_per_document: int = 8, answer_documents: int = 32):
        """`special_ids` (the tokenizer's `all_special_ids`) lets the cache key fill-in-the-
        middle prompts by the text before the cursor instead of their suffix; `text` turns on
        remembered answers (see module doc)."""
        self.ngram_sizes = tuple(sorted(set(ngram_sizes), reverse=True))
        self._special = frozenset(int(t) for t in special_ids)
        self._cursor = CursorContext(special_ids)
        self._text = text
        self._answers = CompletionCache(answers_per_document, answer_documents)
        self._answer_drafts: list[list[int]] = []
        self.answer_hits = 0                # completions that found a remembered answer
        self.max_cont, self.per_key = max_cont, per_key
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._table: OrderedDict[tuple, list[_Entry]] = OrderedDict()   # LRU order: oldest first
        self._doc_keys: dict[str, set[tuple]] = {}
        self._entries = self._bytes = 0
        self._clock = 0
        self._current: _Completion | None = None
        self._proposed: list[tuple[_Entry, list[int]]] = []
        self._lock = threading.Lock()

    # ---- DraftSource ----------------------------------------------------------------------

    def reset(self, ctx: DraftContext) -> None:
        """New completion: store the previous one, start recording this one."""
        with self._lock:
            self._store_current()
            self._clock += 1
            self._cursor.reset(ctx)
            tail = self._cursor.tokens(ctx, self.ngram_sizes[0])
            first = len(tail) - min(max(len(ctx.tokens) - ctx.prompt_len, 0), len(tail))
            self._current = _Completion(ctx.doc_id, tail, len(tail), ctx.prefix, ctx.suffix, first)
            self._proposed = []
            self._answer_drafts = self._remembered(ctx)
            self.answer_hits += bool(self._answer_drafts)

    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        """Score the last proposals against what the model chose, and record the run."""
        with self._lock:
            for entry, toks in self._proposed:
                if accepted and toks and toks[0] == accepted[0]:
                    entry.count += 1
                    entry.last = self._clock
                else:
                    entry.misses += 1
            self._proposed = []
            if self._current is None:
                tail = self._cursor.tokens(ctx, self.ngram_sizes[0])
                self._current = _Completion(ctx.doc_id, tail, len(tail))
            self._current.tokens.extend(int(t) for t in accepted)

    def propose(self, ctx: DraftContext, max_len: int, max_drafts: int) -> list[Draft]:
        """Remembered continuations of the context's last n tokens, best first."""
        drafts, seen = [], set()
        context = self._cursor.tokens(ctx, self.ngram_sizes[0])
        with self._lock:
            self._proposed = []
            generated = [int(t) for t in ctx.tokens[ctx.prompt_len:]]     # the root included
            for answer in self._answer_drafts:
                if answer[:len(generated)] != generated or len(answer) <= len(generated):
                    continue
                toks = answer[len(generated):len(generated) + max_len]
                if tuple(toks) not in seen:
                    seen.add(tuple(toks))
                    drafts.append(Draft(toks, score=ANSWER_SCORE, source=self.name, meta={"answer": True},
                                        prior=ANSWER_PRIOR))
                    if len(drafts) >= max_drafts:
                        return drafts
            for n in self.ngram_sizes:
                if len(context) < n:
                    continue
                gram = tuple(context[-n:])
                for scope in ((ctx.doc_id, None) if ctx.doc_id is not None else (None,)):
                    key = (scope, n, hash(gram))
                    entries = self._table.get(key)
                    if not entries:
                        continue
                    self._table.move_to_end(key)
                    for e in sorted(entries, key=_Entry.rank, reverse=True):
                        toks = list(e.tokens[:max_len])
                        if not toks or tuple(toks) in seen:
                            continue
                        seen.add(tuple(toks))
                        self._proposed.append((e, toks))
                        drafts.append(Draft(toks, score=n + e.count / (e.count + 1.0), source=self.name,
                                            meta={"count": e.count, "misses": e.misses, "n": n,
                                                  "scope": "doc" if scope is not None else "session",
                                                  "age": self._clock - e.last}))
                        if len(drafts) >= max_drafts:
                            return drafts
        return drafts

    # ---- maintenance ----------------------------------------------------------------------

    def flush(self) -> None:
        """Store the current completion now (done anyway by the next `reset`)."""
        with self._lock:
            self._store_current()

    def invalidate(self, doc_id: str, contains: Sequence[int] | None = None) -> int:
        """Drop the document's entries (only those whose tokens contain `contains`, if given);
        returns how many entries were dropped. Session-wide entries stay."""
        with self._lock:
            dropped = 0
            needle = tuple(int(t) for t in contains) if contains is not None else None
            for key in list(self._doc_keys.get(doc_id, ())):
                entries = self._table.get(key)
                if entries is None:
                    continue
                keep = [e for e in entries if needle is not None and not _contains(e.tokens, needle)]
                dropped += len(entries) - len(keep)
                self._replace(key, keep)
            if needle is None:
                self._doc_keys.pop(doc_id, None)
            return dropped

    def stats(self) -> dict:
        return {"keys": len(self._table), "entries": self._entries, "bytes": self._bytes,
                "completions": self._clock}

    # ---- internals ------------------------------------------------------------------------

    def _remembered(self, ctx: DraftContext) -> list[list[int]]:
        """The rest of every remembered answer still valid at this request's cursor."""
        if self._text is None or not (ctx.prefix or ctx.suffix):
            return []
        out = []
        for answer, typed in self._answers.lookup(ctx.doc_id or "", ctx.prefix, ctx.suffix):
            rest = self._text.rest(answer, typed)
            if rest and rest not in out:
                out.append(rest)
        return out

    def _store_current(self) -> None:
        cur, self._current = self._current, None
        if cur is None:
            return
        toks = cur.tokens
        if self._text is not None and (cur.prefix or cur.suffix):
            answer = toks[cur.answer_from:]
            end = next((i for i, t in enumerate(answer) if t in self._special), None)
            if end is not None:
                answer = answer[:end + 1]                   # ends where the model ended it
            if answer:
                self._answers.put(cur.doc_id or "", cur.prefix, cur.suffix,
                                  self._text.decode(answer), tuple(answer))
        for p in range(cur.generated_from, len(toks)):
            cont = tuple(toks[p:p + self.max_cont])
            for n in self.ngram_sizes:
                if p >= n:
                    gram = hash(tuple(toks[p - n:p]))
                    scopes = (cur.doc_id, None) if cur.doc_id is not None else (None,)
                    for scope in scopes:
                        self._insert((scope, n, gram), cont)
        self._evict()

    def _insert(self, key: tuple, cont: tuple[int, ...]) -> None:
        entries = list(self._table.get(key, ()))
        for e in entries:
            short, long_ = sorted((e.tokens, cont), key=len)
            if long_[:len(short)] == short:            # same continuation, maybe longer now
                e.count += 1
                e.last = self._clock
                if len(cont) > len(e.tokens):
                    self._bytes += 8 * (len(cont) - len(e.tokens))
                    e.tokens = cont
                self._table.move_to_end(key)
                return
        entries.append(_Entry(cont, last=self._clock))
        if len(entries) > self.per_key:
            entries.remove(min(entries, key=_Entry.rank))
        self._replace(key, entries)
        if key[0] is not None:
            self._doc_keys.setdefault(key[0], set()).add(key)

    def _replace(self, key: tuple, entries: list[_Entry]) -> None:
        old = self._table.pop(key, [])
        self._entries -= len(old)
        self._bytes -= sum(e.size() for e in old)
        if entries:
            self._table[key] = entries
            self._entries += len(entries)
            self._bytes += sum(e.size() for e in entries)
        elif key[0] is not None and key[0] in self._doc_keys:
            self._doc_keys[key[0]].discard(key)

    def _evict(self) -> None:
        while self._table and (self._entries > self.max_entries or self._bytes > self.max_bytes):
            key = next(iter(self._table))
            self._replace(key, [])


def _contains(hay: tuple[int, ...], needle: tuple[int, ...]) -> bool:
    if not needle:
        return True
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))

