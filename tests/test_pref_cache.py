"""Preference-aware cache: what the model wrote before comes back as drafts."""
from codeswift.pref_cache import PrefCache
from codeswift.sources import DraftContext

PROMPT = [1, 2, 3, 4, 5, 6, 7, 8]


def ctx(tokens, doc="a.py", prompt_len=None):
    return DraftContext(tokens=list(tokens), prompt_len=len(tokens) if prompt_len is None else prompt_len,
                        doc_id=doc)


def complete(cache, prompt, runs, doc="a.py"):
    """One completion: reset with the prompt, then every accepted run."""
    tokens = list(prompt)
    cache.reset(ctx(tokens, doc))
    for run in runs:
        cache.observe(ctx(tokens, doc, prompt_len=len(prompt)), run)
        tokens += run
    return tokens


def proposals(cache, tokens, doc="a.py", max_len=8, max_drafts=4):
    return [d.tokens for d in cache.propose(ctx(tokens, doc), max_len, max_drafts)]


def test_previous_output_is_proposed_at_the_same_place_and_inside_it():
    cache = PrefCache(ngram_sizes=(4, 2))
    complete(cache, PROMPT, [[10, 11], [12], [13, 14]])
    cache.reset(ctx(PROMPT))                          # next completion stores the previous one
    assert proposals(cache, PROMPT) == [[10, 11, 12, 13, 14]]
    assert proposals(cache, PROMPT + [10, 11]) == [[12, 13, 14]]
    assert proposals(cache, [99, 6, 7, 8]) == [[10, 11, 12, 13, 14]]     # the 2-gram (7, 8) still matches
    assert proposals(cache, PROMPT, max_len=2) == [[10, 11]]
    d = cache.propose(ctx(PROMPT), 8, 1)[0]
    assert (d.source, d.meta["n"], d.meta["scope"], d.meta["count"]) == ("pref", 4, "doc", 1)
    assert proposals(cache, [42, 43]) == []


def test_ranked_by_count_then_recency():
    cache = PrefCache(ngram_sizes=(2,))
    complete(cache, [5, 6], [[20, 21]])
    complete(cache, [5, 6], [[30, 31]])
    complete(cache, [5, 6], [[20, 21]])
    cache.flush()
    assert proposals(cache, [5, 6]) == [[20, 21], [30, 31]]           # 2 productions beat 1
    complete(cache, [5, 6], [[40, 41]])
    cache.flush()
    assert proposals(cache, [5, 6]) == [[20, 21], [40, 41], [30, 31]]  # same count: newer first


def test_acceptance_feedback_promotes_and_mispredictions_demote():
    cache = PrefCache(ngram_sizes=(2,))
    complete(cache, [5, 6], [[20, 21]])
    complete(cache, [5, 6], [[30, 31]])
    cache.flush()
    assert proposals(cache, [5, 6]) == [[30, 31], [20, 21]]
    cache.reset(ctx([5, 6]))
    cache.propose(ctx([5, 6]), 8, 4)
    cache.observe(ctx([5, 6]), [20, 21, 22])        # model chose 20: [20, 21] accepted, [30, 31] missed
    meta = {tuple(d.tokens): d.meta for d in cache.propose(ctx([5, 6]), 8, 4)}
    assert list(meta) == [(20, 21), (30, 31)]
    assert (meta[(20, 21)]["count"], meta[(30, 31)]["misses"]) == (2, 1)
    cache.flush()                                    # this completion's output extends [20, 21]
    meta = {tuple(d.tokens): d.meta for d in cache.propose(ctx([5, 6]), 8, 4)}
    assert list(meta) == [(20, 21, 22), (30, 31)] and meta[(20, 21, 22)]["count"] == 3


def test_document_scope_comes_before_session_scope():
    cache = PrefCache(ngram_sizes=(2,))
    complete(cache, [5, 6], [[20]], doc="a.py")
    complete(cache, [5, 6], [[30]], doc="b.py")
    cache.flush()
    assert proposals(cache, [5, 6], doc="a.py") == [[20], [30]]
    assert proposals(cache, [5, 6], doc="b.py") == [[30], [20]]
    assert proposals(cache, [5, 6], doc="c.py") == [[30], [20]]        # session only: newest first


def test_invalidate_drops_document_entries_only():
    cache = PrefCache(ngram_sizes=(2,))
    complete(cache, [5, 6], [[20, 21]], doc="a.py")
    complete(cache, [7, 8], [[40, 41]], doc="a.py")
    cache.flush()
    assert cache.invalidate("a.py", contains=[40, 41]) == 1
    assert [d.meta["scope"] for d in cache.propose(ctx([7, 8]), 8, 4)] == ["session"]
    assert [d.meta["scope"] for d in cache.propose(ctx([5, 6]), 8, 4)] == ["doc"]   # same tokens: once
    assert cache.invalidate("a.py") > 0
    assert [d.meta["scope"] for d in cache.propose(ctx([5, 6]), 8, 4)] == ["session"]
    assert cache.invalidate("never-seen") == 0


def test_memory_is_bounded_with_lru_eviction():
    cache = PrefCache(ngram_sizes=(1,), max_entries=6, per_key=1)
    for i in range(10):
        complete(cache, [100 + i], [[i, i]], doc=None)       # keys (100+i,) and (i,)
        cache.flush()
        proposals(cache, [100])                                  # keep the first key in use
        assert cache.stats()["entries"] <= 6
    assert proposals(cache, [100]) == [[0, 0]]                  # recently used: kept
    assert proposals(cache, [101]) == []                        # least recently used: evicted
    assert proposals(cache, [109]) == [[9, 9]]


def test_byte_bound():
    cache = PrefCache(ngram_sizes=(1,), max_bytes=2000, max_cont=32)
    for i in range(50):
        complete(cache, [1000 + i], [list(range(32))], doc=None)
    cache.flush()
    assert 0 < cache.stats()["bytes"] <= 2000
