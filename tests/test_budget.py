"""Cost curve: the tree-size optimiser, the on-disk cache and its sanity check; drafter ranking."""
import json

import numpy as np
import pytest

from codeswift.budget import KS, CostCurve, cache_path, flat_curve, load_or_measure, plausible
from codeswift.drafting import DraftConfig, Drafter, Kind, SourceStats, StatKey
from codeswift.sources import Draft, DraftContext


class FixedSource:
    """A draft source proposing the same drafts every step (`make()` builds fresh Draft objects)."""

    def __init__(self, name, make, cheap=None):
        self.name, self.make = name, make
        self.cheap = name in ("context", "pref") if cheap is None else cheap   # as the real ones

    def reset(self, ctx):
        pass

    def observe(self, ctx, accepted):
        pass

    def propose(self, ctx, max_len, max_drafts):
        return self.make()


class CountingBackend:
    """A backend whose verify cost is known: 10 ms + 1 ms per token (no model)."""
    name, device, dtype = "fake", "cpu-fake", "f32"

    def __init__(self):
        self.measured = 0

    def prefill(self, tokens, key=None, logits=True):
        return 0, 0

    def verify(self, tokens, parents, depth):
        import time
        time.sleep((10 + len(tokens)) / 1000)
        return np.zeros(len(tokens), np.int64)

    def commit(self, keep):
        pass

    def finish(self, tokens, key):
        self.measured += 1


def test_best_size_follows_the_cost_curve():
    probs = np.array([1.0, 0.9, 0.8, 0.3, 0.1])
    flat = CostCurve((1, 64), (10.0, 10.5))
    steep = CostCurve((1, 2, 64), (10.0, 20.0, 640.0))
    assert flat.best_size(probs, 64) == 5                 # extra nodes are almost free
    assert steep.best_size(probs, 64) == 1                # each node doubles the step


def cached_curve(tmp_path, monkeypatch, ks, ms):
    """A backend, and a cost curve for it already cached on disk; returns (backend, path)."""
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    b = CountingBackend()
    path = cache_path("m", b.device, b.dtype)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"ks": ks, "ms": ms}))
    return b, path


def test_implausible_cached_curve_is_measured_again(tmp_path, monkeypatch):
    # k=2 costing 9.5x k=1 (a burst of load during the measurement) cannot be true
    b, path = cached_curve(tmp_path, monkeypatch, list(KS), [222.0] + [2107.0] * (len(KS) - 1))
    assert not plausible(CostCurve((1, 2, 4), (222.0, 2107.0, 2107.0)))
    curve = load_or_measure(b, "m", 100)
    assert b.measured == 1 and plausible(curve) and curve(1) < 50
    assert json.loads(path.read_text())["ms"] == list(curve.ms)      # the fresh one is cached
    assert load_or_measure(b, "m", 100).ms == curve.ms and b.measured == 2   # reused after a probe


def test_cached_curve_that_disagrees_with_a_probe_is_measured_again(tmp_path, monkeypatch):
    # plausible shape, but 100x what this backend costs (measured while the machine was busy)
    b, _ = cached_curve(tmp_path, monkeypatch, list(KS), [1100.0 + 100 * k for k in KS])
    curve = load_or_measure(b, "m", 100)
    assert b.measured == 2 and curve(1) < 50                 # probe, then a full measurement


def test_cached_curve_of_other_batch_sizes_is_measured_again(tmp_path, monkeypatch):
    b, _ = cached_curve(tmp_path, monkeypatch, [1, 8, 64], [11.0, 18.0, 74.0])    # an older, sparser curve
    curve = load_or_measure(b, "m", 100)
    assert b.measured == 1 and curve.ks == KS


def test_upper_confidence_bound_explores_then_converges():
    fresh = SourceStats()
    assert fresh.optimistic_rate > fresh.rate + 0.1         # untested: worth a try
    seen = SourceStats()
    for _ in range(200):
        seen.update(10, 3)                                   # measured 30%
    assert abs(seen.rate - 0.3) < 0.02 and seen.optimistic_rate - seen.rate < 0.05


def test_acceptance_is_learned_per_source_and_match_length():
    src = FixedSource("context", lambda: [Draft([5, 6], score=4.0), Draft([7], score=1.0)])
    d = Drafter([src])
    ctx = DraftContext([1, 2, 3], 3)
    d.reset(ctx)
    tree = d.propose(ctx)
    long, short = Kind("context", 1), Kind("context", 0)
    assert {StatKey(long, 0), StatKey(long, 1), StatKey(short, 0)} <= set(d.stats)
    assert set().union(*tree.sources[1:]) <= {long, short}
    # node 1 (token 5, the long match) accepted, token 7 rejected
    path = [0] + [i for i in range(1, len(tree)) if int(tree.tokens[i]) == 5]
    d.update(ctx, tree, path, [5])
    assert d.stats[StatKey(long, 0)].rate > d.stats[StatKey(short, 0)].rate
    assert d.stats[StatKey(long, 0)].observed == 1 and d.stats[StatKey(long, 1)].observed == 1   # token 6 tested
    assert d.completion["context"][1] == 1 and 0 < d.rate("context") < 1


def tree_sizes(d: Drafter, steps: int, accept_all: bool) -> list[int]:
    """Sizes of the trees `d` proposes over `steps` steps of one completion whose drafts are
    all accepted (accept_all) or all rejected."""
    ctx = DraftContext([1, 2, 3], 3)
    d.reset(ctx)
    sizes = []
    for _ in range(steps):
        tree = d.propose(ctx)
        sizes.append(len(tree))
        if accept_all:
            d.update(ctx, tree, list(range(len(tree))), tree.tokens[1:].tolist())
        else:
            d.update(ctx, tree, [0], [])
    return sizes


def test_exploration_verifies_an_untested_kind_even_when_the_cost_curve_says_no():
    src = FixedSource("pref", lambda: [Draft(list(range(10, 30)), score=9.0)])
    # llama.cpp Q4 on 2 CPU cores: a second token doubles the step, more cost ~11 ms each
    steep = CostCurve((1, 2, 4, 8, 16, 32, 64), (27.0, 53.0, 75.0, 133.0, 212.0, 394.0, 736.0))
    d = Drafter([src], steep)
    trees = tree_sizes(d, 6, accept_all=True)
    assert trees[0] > 1                 # tried although its prior mean (40%) says it does not pay
    # after a few fully accepted explorations the measured rate makes long chains pay
    assert trees[-1] > 8 and d.stats[StatKey(Kind("pref", 2, agreed=True), 1)].rate > 0.8


def test_forced_exploration_when_even_the_bound_says_no():
    src = FixedSource("context", lambda: [Draft(list(range(10, 30)), score=2.0)])    # answered inline (no timing policy)
    linear = CostCurve((1, 2, 64), (10.0, 20.0, 640.0))       # every token costs a full pass
    d = Drafter([src], linear)
    sizes = tree_sizes(d, 8, accept_all=False)                  # every draft rejected
    assert d.explore_len() == 1                                 # 2 tokens cost 2 steps: one is tried
    assert sizes[:d.cfg.explore_min] == [1 + d.explore_len()] * d.cfg.explore_min
    assert sizes[d.cfg.explore_min:] == [1] * (8 - d.cfg.explore_min)    # then it stops paying for it


def test_exploration_length_follows_the_cost_curve():
    """An exploration step costs at most `explore_cost` (2) one-token steps: the full 8 tokens
    where the curve is flat, one where every token costs a full pass."""
    src = FixedSource("context", lambda: [])
    flat = CostCurve((1, 16, 64), (100.0, 120.0, 250.0))               # AMX bf16-like
    avx2 = CostCurve((1, 2, 3, 4, 8, 16), (46.0, 95.0, 129.0, 117.0, 212.0, 319.0))   # llama.cpp Q4_K_M, AVX2
    assert Drafter([src], flat).explore_len() == 8
    assert Drafter([src], avx2).explore_len() == 1
    assert Drafter([src], CostCurve((1, 4, 8), (30.0, 36.0, 65.0)), DraftConfig(explore_len=16)).explore_len() == 6


def test_drafts_are_cut_to_what_can_be_emitted():
    from codeswift.drafting import _useful
    ctx = DraftContext([1, 2, 3], 3, max_depth=4, is_final=lambda t: t == 99)
    assert _useful(Draft([5, 6, 7, 8, 9, 10], 1.0), ctx).tokens == [5, 6, 7, 8]      # tokens left
    assert _useful(Draft([5, 99, 7], 1.0), ctx).tokens == [5, 99]                  # nothing after a final one
    assert _useful(Draft([5, 6], 1.0), DraftContext([1], 1, max_depth=0)).tokens == []
    assert _useful(Draft([5, 6], 1.0), DraftContext([1], 1)).tokens == [5, 6]


def test_a_bigger_batch_that_costs_less_is_used():
    # measured on AVX512 llama.cpp Q4_0: 3 tokens 24 ms, 4 tokens 20 ms (kernels in groups of 4)
    curve = CostCurve((1, 2, 3, 4, 6, 8), (10.6, 18.3, 24.1, 20.5, 32.4, 32.5))
    assert curve.batch_for(3) == 4 and curve(3) == pytest.approx(20.5)
    assert curve.batch_for(6) == 6 or curve(6) <= 32.5
    assert curve.batch_for(5) == 5                     # not measured: interpolated, not padded
    assert curve.batch_for(2) == 2 and curve.batch_for(1) == 1
    probs = np.array([1.0, 0.6, 0.5, 0.1, 0.05])
    assert curve.best_size(probs, 64) in (3, 4)        # 3 nodes cost what 4 do


def test_drafter_pads_the_tree_to_the_cheaper_batch():
    from codeswift.drafting import DraftConfig
    from codeswift.tree import greedy_accept
    # a 2-token draft trusted enough for 3 nodes; 3 nodes cost 30 ms but 4 only 11 ms
    curve = CostCurve((1, 2, 3, 4, 8), (10.0, 25.0, 30.0, 11.0, 40.0))
    src = FixedSource("context", lambda: [Draft([7, 8], score=9.0)])
    d = Drafter([src], curve, DraftConfig(max_nodes=64, explore_min=0))
    ctx = DraftContext(tokens=[1, 2, 3], prompt_len=2)
    d.reset(ctx)
    for depth in (1, 2):
        st = d._stats(Kind("context", 2, agreed=True), depth)
        st.tested, st.accepted = 100.0, 95.0
    tree = d.propose(ctx)
    assert len(tree) == 4                             # padded: the 4-node batch is the cheap one
    assert tree.tokens[:3].tolist() == [3, 7, 8] and tree.parents.tolist() == [-1, 0, 1, 2]
    assert tree.prob[3] == 0 and tree.sources[3] == frozenset()
    path, bonus = greedy_accept(tree, np.array([7, 8, 5, 0]))
    assert path == [0, 1, 2] and bonus == 5           # the pad node is verified like any other


def test_acceptance_per_depth_values_an_answer_that_survives_whole():
    """Remembered answers are all or nothing past their first tokens: half of them fail at the
    second token, the other half are accepted whole (30 tokens). One later-token rate (0.97
    pooled) would give the 30th token 0.5 * 0.97**28 = 0.2; per depth it is the true 0.5."""
    from codeswift.drafting import DEPTH_STARTS, depth_bucket
    assert [depth_bucket(d) for d in (1, 2, 3, 4, 5, 8, 9, 16, 17, 64)] == [0, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert DEPTH_STARTS[0] == 1
    answer = list(range(10, 40))
    src = FixedSource("pref", lambda: [Draft(list(answer), score=9.0)])
    d = Drafter([src], flat_curve(), DraftConfig(max_nodes=64, explore_min=0))
    ctx = DraftContext([1, 2, 3], 3)
    d.reset(ctx)
    for i in range(400):
        tree = d.propose(ctx)
        keep = len(tree) if i % 2 else 2                 # whole, or only its first token
        d.update(ctx, tree, list(range(keep)), tree.tokens[1:keep].tolist())
    tree = d.propose(ctx)
    assert len(tree) == 31 and 0.4 < tree.prob[30] < 0.65
    assert d.stats[StatKey(Kind("pref", 2, agreed=True), 1)].rate == pytest.approx(0.5, abs=0.08)
    assert d.stats[StatKey(Kind("pref", 2, agreed=True), 5)].rate > 0.95
