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
MAX_OCCURRENCES = 512          # occurrences read per lookup; more are sampled evenly


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
    starts: dict[int, list] = {}

    def occurrences(match_len: int) -> list:
        # (index, positions, weight) of live occurrences of the last match_len tokens
        if match_len not in starts:
            starts[match_len] = [(ix, *ix.continuation_starts(*ranges[match_len - 1], alive))
                                 for ix, alive, ranges in found if len(ranges) >= match_len]
            starts[match_len] = [o for o in starts[match_len] if len(o[1])]
        return starts[match_len]

    # A suffix that occurs live implies every shorter one does: binary search the length
    # (dead documents, e.g. the file being edited, may hold all the longest matches).
    lo, hi = min_match, max((len(r) for _, _, r in found), default=0)
    if hi < lo or not occurrences(lo):
        return []
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if occurrences(mid) else (lo, mid - 1)
    occ = occurrences(lo)
    rows = np.concatenate([ix.windows(pos, max_len) for ix, pos, _ in occ])
    weights = np.concatenate([np.full(len(pos), w) for _, pos, w in occ])
    return [Continuation(toks, count, lo) for toks, count in top_paths(rows, weights, max_drafts)]


def top_paths(rows: np.ndarray, weights: np.ndarray, max_drafts: int) -> list[tuple[list[int], float]]:
    """Walk the trie of `rows` ([m, max_len], SENTINEL-padded): the heaviest path first, then
    the heaviest branches left on the way. Returns (tokens, support at the branch point).

    Rows are sorted, so each trie node is a row range, and the longest common prefix of
    neighbouring rows tells where ranges split: a walk jumps from branch point to branch
    point instead of going token by token."""
    m, max_len = rows.shape
    order = np.argsort(_row_keys(rows), kind="stable")  # lexicographic: equal prefixes adjacent
    rows = rows[order]
    cum_np = np.concatenate(([0.0], np.cumsum(weights[order])))
    same = rows[1:] == rows[:-1]                                         # [m-1, max_len]
    lcp_np = np.concatenate(([0], np.where(same.all(axis=1), max_len, same.argmin(axis=1))))  # [m]
    cum, lcp = cum_np.tolist(), lcp_np.tolist()
    heap = [(-cum[-1], 0, 0, m, 0, [])]                # (-support, seq, lo, hi, depth, prefix)
    seq, out = 1, []
    while heap and len(out) < max_drafts:
        neg, _, lo, hi, depth, prefix = heapq.heappop(heap)
        count = -neg if prefix else None               # root: set once its first token is chosen
        while depth < max_len:
            split = _min_lcp(lcp, lcp_np, lo, hi, max_len)
            shared = rows[lo, depth:split].tolist()       # every row in [lo, hi) has these
            stop = shared.index(SENTINEL) if SENTINEL in shared else len(shared)
            if count is None and stop > 0:
                count = cum[hi] - cum[lo]
            prefix += shared[:stop]
            if stop < len(shared) or split >= max_len:
                break
            depth = split
            room = max_drafts - len(out) - 1            # more branches could never be used
            kids = _children(lcp, lcp_np, cum, cum_np, lo, hi, split, room + 2)
            # sorted rows: a SENTINEL child (occurrences that end here) can only come first,
            # and a draft that stops is never better than one that goes on
            kids = [k for k in kids if int(rows[k[1], depth]) != SENTINEL]
            if not kids:
                break
            for support, a, b in kids[1:1 + room]:
                heapq.heappush(heap, (-support, seq, a, b, depth + 1, prefix + [int(rows[a, depth])]))
                seq += 1
            support, lo, hi = kids[0]
            if count is None:
                count = support
            prefix.append(int(rows[lo, depth]))
            depth += 1
        if prefix:
            out.append((prefix, float(count)))
    return out


_SMALL = 64                    # row ranges up to this size are walked with plain Python lists


def _min_lcp(lcp, lcp_np, lo, hi, max_len) -> int:
    if hi - lo <= 1:
        return max_len
    return min(lcp[lo + 1:hi]) if hi - lo <= _SMALL else int(lcp_np[lo + 1:hi].min())


def _children(lcp, lcp_np, cum, cum_np, lo, hi, split, keep) -> list[tuple[float, int, int]]:
    """The `keep` heaviest (support, lo, hi) child ranges of [lo, hi) splitting at `split`,
    heaviest first, ties in token order; the SENTINEL child, if any, is always kept."""
    if hi - lo <= _SMALL:
        cuts = [lo] + [i for i in range(lo + 1, hi) if lcp[i] == split] + [hi]
        kids = [(cum[b] - cum[a], a, b) for a, b in zip(cuts, cuts[1:])]
    else:
        cuts = np.concatenate(([lo], lo + 1 + np.flatnonzero(lcp_np[lo + 1:hi] == split), [hi]))
        support = cum_np[cuts[1:]] - cum_np[cuts[:-1]]
        top = np.argsort(-support, kind="stable")[:keep]
        kids = [(float(support[0]), int(cuts[0]), int(cuts[1]))] + [
            (float(support[i]), int(cuts[i]), int(cuts[i + 1])) for i in top if i]
    first, rest = kids[0], kids[1:]
    rest.sort(key=lambda k: -k[0])                  # stable: smaller token first on ties
    return sorted([first] + rest[:keep], key=lambda k: -k[0])


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One bytes key per row that sorts like the row (SENTINEL first): big-endian token + 1.
    ~4x faster than np.lexsort over the columns."""
    be = (rows.astype(np.int64) + 1).astype(">u4")
    return np.ascontiguousarray(be).view(f"S{4 * rows.shape[1]}").ravel()
