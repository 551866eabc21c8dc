"""Suffix array and the continuation lookup against brute force on random token arrays."""
from collections import Counter

import numpy as np
import pytest

from datastore.suffix_index import (SENTINEL, SuffixIndex, build_suffix_array, concat_documents,
                                    lookup, top_paths)


def brute_sa(t):
    return sorted(range(len(t)), key=lambda i: list(t[i:]))


@pytest.mark.parametrize("seed", range(5))
def test_suffix_array_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        t = rng.integers(-1, 1 + int(rng.integers(1, 6)), int(rng.integers(1, 80)))
        assert build_suffix_array(t).tolist() == brute_sa(t)


def test_suffix_array_of_long_repeats():
    t = np.array([1, 2] * 500 + [1] * 300, np.int32)
    assert build_suffix_array(t).tolist() == brute_sa(t)
    assert build_suffix_array(np.zeros(0, np.int32)).tolist() == []


def brute_lookup(docs, ctx, max_len, max_suffix=32):
    """(longest suffix length, every continuation of it) by scanning."""
    best = 0
    for n in range(1, min(max_suffix, len(ctx)) + 1):
        pat = list(ctx[-n:])
        if any(list(d[i:i + n]) == pat for d in docs for i in range(len(d) - n + 1)):
            best = n
        else:
            break
    conts = [tuple(d[i + best:i + best + max_len]) for d in docs for i in range(len(d) - best + 1)
             if best and list(d[i:i + best]) == list(ctx[-best:])]
    return best, conts


@pytest.mark.parametrize("seed", range(6))
def test_lookup_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(80):
        docs = [rng.integers(0, 3, int(rng.integers(0, 40))) for _ in range(int(rng.integers(1, 4)))]
        index = SuffixIndex.from_documents(docs)
        ctx = rng.integers(0, 3, int(rng.integers(1, 10))).tolist()
        got = lookup([(index, None)], ctx, 4, 100)
        best, conts = brute_lookup(docs, ctx, 4)
        nonempty = [c for c in conts if c]
        maximal = {c for c in nonempty if not any(o != c and o[:len(c)] == c for o in nonempty)}
        # every draft ends where its occurrences diverge or stop: the maximal continuations
        assert {tuple(c.tokens) for c in got} == maximal
        assert all(c.match_len == best for c in got)
        if nonempty:
            firsts = Counter(c[0] for c in nonempty)
            assert got[0].count == max(firsts.values())
            assert got[0].tokens[0] in [t for t, n in firsts.items() if n == max(firsts.values())]
        counts = [c.count for c in got]
        assert counts == sorted(counts, reverse=True)


def test_most_frequent_continuation_first_and_branches_next():
    docs = [np.array(d) for d in ([5, 1, 2, 3], [5, 1, 2, 3], [5, 1, 2, 4], [5, 1, 9])]
    got = lookup([(SuffixIndex.from_documents(docs), None)], [7, 5], 8, 8)
    assert [(c.tokens, c.count, c.match_len) for c in got] == [
        ([1, 2, 3], 4.0, 1), ([1, 9], 1.0, 1), ([1, 2, 4], 1.0, 1)]    # ties: earlier branch first
    got = lookup([(SuffixIndex.from_documents(docs), None)], [5, 1, 2], 8, 1)
    assert [(c.tokens, c.count, c.match_len) for c in got] == [([3], 2.0, 3)]


def test_continuations_stop_at_document_boundaries_and_max_len():
    docs = [np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8])]
    index = SuffixIndex.from_documents(docs)
    assert lookup([(index, None)], [2], 10, 4)[0].tokens == [3]
    assert lookup([(index, None)], [4], 2, 4)[0].tokens == [5, 6]
    assert lookup([(index, None)], [3], 4, 4) == []              # 3 ends its document
    assert lookup([(index, None)], [9], 4, 4) == []              # never seen


def test_dead_documents_are_skipped_and_shorter_matches_tried():
    docs = [np.array([1, 2, 3, 4]), np.array([9, 3, 7])]
    index = SuffixIndex.from_documents(docs)
    assert lookup([(index, None)], [2, 3], 4, 4)[0].tokens == [4]
    alive = np.array([False, True])
    got = lookup([(index, alive)], [2, 3], 4, 4)
    assert [(c.tokens, c.match_len) for c in got] == [([7], 1)]
    assert lookup([(index, np.array([False, False]))], [2, 3], 4, 4) == []


def test_several_indexes_are_searched_together():
    a = SuffixIndex.from_documents([np.array([1, 2, 3])])
    b = SuffixIndex.from_documents([np.array([1, 2, 5]), np.array([1, 2, 5])])
    got = lookup([(a, None), (b, None)], [1, 2], 3, 4)
    assert [(c.tokens, c.count) for c in got] == [([5], 2.0), ([3], 1.0)]
    assert lookup([(a, None), (b, None)], [0, 1, 2, 3], 3, 4) == []   # 3 ends a's only document


def test_min_match_filters_short_matches():
    index = SuffixIndex.from_documents([np.array([1, 2, 3])])
    assert lookup([(index, None)], [9, 2], 2, 2, min_match=2) == []
    assert lookup([(index, None)], [1, 2], 2, 2, min_match=2)[0].tokens == [3]


def test_large_ranges_are_sampled_with_scaled_counts():
    doc = np.array([7, 1] * 3000 + [7, 2] * 1000)
    got = lookup([(SuffixIndex.from_documents([doc]), None)], [7], 1, 2)
    assert [c.tokens for c in got] == [[1], [2]]
    assert got[0].count == pytest.approx(3000, rel=0.05) and got[1].count == pytest.approx(1000, rel=0.1)


def test_concat_documents_layout():
    tokens, starts = concat_documents([np.array([4, 5]), np.array([], int), np.array([6])])
    assert tokens.tolist() == [SENTINEL, 4, 5, SENTINEL, SENTINEL, 6, SENTINEL]
    assert starts.tolist() == [1, 4, 5]


def test_top_paths_weights():
    rows = np.array([[1, 2], [1, 3], [4, SENTINEL]])
    assert top_paths(rows, np.array([1.0, 1.0, 5.0]), 3) == [([4], 5.0), ([1, 2], 2.0), ([1, 3], 1.0)]
