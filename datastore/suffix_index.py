"""Token suffix index: "longest suffix of the context that occurs, and what most often follows".

Documents are concatenated into one int32 array, each surrounded by `SENTINEL` (-1), which no
token id equals, so no match and no continuation crosses a document boundary:

    tokens = [S, doc0..., S, doc1..., S, ..., S]

The suffix array is built over the *reversed* array. Matching the context backwards from its
last token then narrows one suffix-array range per extra context token, so the longest
occurring suffix is found in one pass (O(L log n) probes) instead of one search per length.
A range holds every occurrence; continuations are read forward from the original array,
sorted, and walked as a trie: the most supported path first, then the best branches.

`lookup()` searches several indexes at once (the repository's main index plus the overlay of
unsaved files), each with an optional per-document `alive` mask (stale or excluded files).
"""
from __future__ import annotations

import bisect
import heapq
from typing import NamedTuple, Sequence

import numpy as np

SENTINEL = -1
MAX_OCCURRENCES = 2048         # occurrences read per lookup; more are sampled evenly


class Continuation(NamedTuple):
    """One draft: `tokens` followed the longest matching suffix (`match_len` tokens) `count`
    times; `count` is the support where this draft leaves better-ranked ones (its first token
    for the best draft)."""
    tokens: list[int]
    count: float
    match_len: int


def build_suffix_array(text: np.ndarray) -> np.ndarray:
    """Suffix array of an integer sequence, int32 `[n]`.

    Prefix doubling that only re-sorts unresolved groups (Larsson-Sadakane style): a suffix's
    rank is the slot where its group starts in `sa`, so ranks stay comparable across groups
    and a group of one is final. Each round is a few vectorised numpy ops over the suffixes
    still tied; rounds ≈ log2 of the longest repeat, and code's ties shrink fast.
    """
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int32)
    sa = np.argsort(text, kind="stable").astype(np.int64)
    slots = np.arange(n, dtype=np.int64)
    vals = np.asarray(text)[sa]
    rank = np.empty(n, np.int64)
    rank[sa], slots = _regroup(slots, vals, np.zeros(n, np.int64))
    k = 1
    while len(slots):
        s = sa[slots]
        r1 = rank[s]                                   # ascending along slots: groups are contiguous
        nxt = s + k
        r2 = np.where(nxt < n, rank[np.minimum(nxt, n - 1)], -1)
        order = np.argsort(r1 * (n + 1) + (r2 + 1), kind="stable")
        s, r1, r2 = s[order], r1[order], r2[order]
        sa[slots] = s
        rank[s], slots = _regroup(slots, r1, r2)
        k *= 2
    return sa.astype(np.int32)


def _regroup(slots: np.ndarray, key1: np.ndarray, key2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For suffixes at sorted `slots` with keys: (new rank = slot of group start, slots of
    groups that are still ties)."""
    new_group = np.ones(len(slots), bool)
    new_group[1:] = (key1[1:] != key1[:-1]) | (key2[1:] != key2[:-1])
    group_rank = np.maximum.accumulate(np.where(new_group, slots, 0))
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.append(starts, len(slots)))
    return group_rank, slots[np.repeat(sizes > 1, sizes)]


def concat_documents(docs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens int32 [n], doc_starts int64 [D]): docs joined with sentinels on both sides."""
    lengths = np.fromiter((len(d) for d in docs), np.int64, len(docs))
    starts = 1 + np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
    tokens = np.full(int(lengths.sum() + len(docs) + 1), SENTINEL, np.int32)
    for start, doc in zip(starts, docs):
        tokens[start:start + len(doc)] = doc
    return tokens, starts[:len(docs)]


class SuffixIndex:
    """Immutable suffix index over sentinel-separated documents."""

    def __init__(self, tokens: np.ndarray, doc_starts: np.ndarray, rsa: np.ndarray | None = None):
        self.tokens = np.ascontiguousarray(tokens, dtype=np.int32)      # [n]
        self.doc_starts = np.asarray(doc_starts, dtype=np.int64)         # [D]
        self.reversed = np.ascontiguousarray(self.tokens[::-1])          # [n]
        self.rsa = build_suffix_array(self.reversed) if rsa is None else np.asarray(rsa, np.int32)
        # memoryviews index ~5x faster than numpy scalars inside bisect
        self._rev_mv = memoryview(self.reversed)
        self._rsa_mv = memoryview(self.rsa)

    @classmethod
    def from_documents(cls, docs: Sequence[np.ndarray]) -> "SuffixIndex":
        return cls(*concat_documents(docs))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def n_docs(self) -> int:
        return len(self.doc_starts)

    def match_ranges(self, context: Sequence[int], max_suffix: int = 32) -> list[tuple[int, int]]:
        """ranges[L-1] = suffix-array range of occurrences of the context's last L tokens."""
        rev, rsa = self._rev_mv, self._rsa_mv
        ranges: list[tuple[int, int]] = []
        lo, hi = 0, len(rsa)
        for j in range(min(max_suffix, len(context))):
            tok = int(context[-1 - j])
            if tok < 0:
                break
            key = lambda s, j=j: rev[s + j]           # sorted within [lo, hi): they share j tokens
            new_lo = bisect.bisect_left(rsa, tok, lo, hi, key=key)
            new_hi = bisect.bisect_right(rsa, tok, new_lo, hi, key=key)
            if new_lo == new_hi:
                break
            lo, hi = new_lo, new_hi
            ranges.append((lo, hi))
        return ranges

    def continuation_starts(self, lo: int, hi: int, alive: np.ndarray | None,
                            cap: int = MAX_OCCURRENCES) -> tuple[np.ndarray, float]:
        """Forward positions right after each occurrence in [lo, hi) whose document is alive,
        evenly sampled down to `cap`; returns (positions, weight of one position)."""
        r = self.rsa[lo:hi]
        weight = 1.0
        if len(r) > cap:
            step = len(r) / cap
            r = r[(np.arange(cap) * step).astype(np.int64)]
            weight = step
        pos = len(self.tokens) - r.astype(np.int64)
        if alive is not None:
            doc = np.searchsorted(self.doc_starts, pos, side="right") - 1
            pos = pos[alive[np.maximum(doc, 0)]]
        return pos, weight

    def windows(self, starts: np.ndarray, max_len: int) -> np.ndarray:
        """[len(starts), max_len] tokens from each start, SENTINEL from a document's end on."""
        idx = np.minimum(starts[:, None] + np.arange(max_len)[None, :], len(self.tokens) - 1)
        w = self.tokens[idx]
        ended = np.maximum.accumulate(w == SENTINEL, axis=1)
        w[ended] = SENTINEL
        return w


def lookup(segments: Sequence[tuple[SuffixIndex, np.ndarray | None]], context: Sequence[int],
           max_len: int, max_drafts: int, max_suffix: int = 32,
           min_match: int = 1) -> list[Continuation]:
    """The one query, over several indexes: longest context suffix occurring in a live document
    of any of them, and its most frequent continuations (at most `max_len` tokens each)."""
    if max_len <= 0 or max_drafts <= 0:
        return []
    found = [(ix, alive, ix.match_ranges(context, max_suffix)) for ix, alive in segments]
    for match_len in range(max((len(r) for _, _, r in found), default=0), min_match - 1, -1):
        rows, weights = [], []
        for ix, alive, ranges in found:
            if len(ranges) >= match_len:
                pos, weight = ix.continuation_starts(*ranges[match_len - 1], alive)
                if len(pos):
                    rows.append(ix.windows(pos, max_len))
                    weights.append(np.full(len(pos), weight))
        if rows:
            return [Continuation(toks, count, match_len) for toks, count in
                    top_paths(np.concatenate(rows), np.concatenate(weights), max_drafts)]
    return []


def top_paths(rows: np.ndarray, weights: np.ndarray, max_drafts: int) -> list[tuple[list[int], float]]:
    """Walk the trie of `rows` ([m, max_len], SENTINEL-padded): the heaviest path first, then
    the heaviest branches left on the way. Returns (tokens, support at the branch point)."""
    order = np.lexsort(rows.T[::-1])                   # lexicographic: equal prefixes are adjacent
    rows = rows[order]
    cum = np.concatenate(([0.0], np.cumsum(weights[order])))
    heap = [(-(cum[-1]), 0, 0, len(rows), 0, [])]      # (-support, seq, lo, hi, depth, prefix)
    seq, out = 1, []
    while heap and len(out) < max_drafts:
        neg, _, lo, hi, depth, prefix = heapq.heappop(heap)
        count = -neg                                      # root: set once its first token is chosen
        max_len = rows.shape[1]
        while depth < max_len:
            col = rows[lo:hi, depth]
            if col[0] == col[-1]:                         # one child only
                if col[0] == SENTINEL:
                    break
                if not prefix:
                    count = cum[hi] - cum[lo]
                if hi - lo == 1 or np.array_equal(rows[lo, depth:], rows[hi - 1, depth:]):
                    tail = rows[lo, depth:]
                    prefix += tail[:_first_sentinel(tail)].tolist()
                    break
                prefix.append(int(col[0]))
                depth += 1
                continue
            cuts = np.concatenate(([0], np.flatnonzero(col[1:] != col[:-1]) + 1, [hi - lo])) + lo
            support = cum[cuts[1:]] - cum[cuts[:-1]]
            # sorted rows: a SENTINEL child (occurrences that end here) can only come first,
            # and a draft that stops is never better than one that goes on
            first = 1 if rows[cuts[0], depth] == SENTINEL else 0
            best = first + int(np.argmax(support[first:]))
            for i in range(len(support)):
                if i != best and i >= first:
                    heapq.heappush(heap, (-support[i], seq, int(cuts[i]), int(cuts[i + 1]), depth + 1,
                                          prefix + [int(rows[cuts[i], depth])]))
                    seq += 1
            if not prefix:
                count = support[best]
            prefix.append(int(rows[cuts[best], depth]))
            lo, hi, depth = int(cuts[best]), int(cuts[best + 1]), depth + 1
        if prefix:
            out.append((prefix, float(count)))
    return out


def _first_sentinel(row: np.ndarray) -> int:
    hits = np.flatnonzero(row == SENTINEL)
    return int(hits[0]) if len(hits) else len(row)
