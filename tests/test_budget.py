"""Cost curve: the tree-size optimiser, the on-disk cache and its sanity check; drafter ranking."""
import json

import numpy as np

from codeswift.budget import CostCurve, cache_path, load_or_measure, plausible
from codeswift.drafting import Drafter, SourceStats
from codeswift.sources import Draft, DraftContext


class CountingBackend:
    """A backend whose verify cost is known: 10 ms + 1 ms per token (no model)."""
    name, device, dtype = "fake", "cpu-fake", "f32"

    def __init__(self):
        self.measured = 0

    def prefill(self, tokens, key=None):
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


def test_implausible_cached_curve_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    b = CountingBackend()
    path = cache_path("m", b.device, b.dtype)
    path.parent.mkdir(parents=True)
    # k=2 costing 9.5x k=1 (a burst of load during the measurement) cannot be true
    path.write_text(json.dumps({"ks": [1, 2, 4], "ms": [222.0, 2107.0, 2107.0]}))
    assert not plausible(CostCurve((1, 2, 4), (222.0, 2107.0, 2107.0)))
    curve = load_or_measure(b, "m", 100)
    assert b.measured == 1 and plausible(curve) and curve(1) < 50
    assert json.loads(path.read_text())["ms"] == list(curve.ms)      # the fresh one is cached
    assert load_or_measure(b, "m", 100).ms == curve.ms and b.measured == 1   # and reused


def test_upper_confidence_bound_explores_then_converges():
    fresh = SourceStats()
    assert fresh.optimistic_rate > fresh.rate + 0.2         # untested: worth a try
    seen = SourceStats()
    for _ in range(200):
        seen.update(10, 3)                                   # measured 30%
    assert abs(seen.rate - 0.3) < 0.02 and seen.optimistic_rate - seen.rate < 0.05


def test_acceptance_is_learned_per_source_and_match_length():
    class Src:
        name = "context"

        def reset(self, ctx):
            pass

        def observe(self, ctx, accepted):
            pass

        def propose(self, ctx, max_len, max_drafts):
            return [Draft([5, 6], score=4.0), Draft([7], score=1.0)]

    d = Drafter([Src()])
    ctx = DraftContext([1, 2, 3], 3)
    d.reset(ctx)
    tree = d.propose(ctx)
    assert {"context#4", "context#1"} <= set(d.stats)
    assert set().union(*tree.sources[1:]) <= {"context#4", "context#1"}
    # node 1 (token 5, the long match) accepted, token 7 rejected
    path = [0] + [i for i in range(1, len(tree)) if int(tree.tokens[i]) == 5]
    d.update(ctx, tree, path, [5])
    assert d.stats["context#4"].rate > d.stats["context#1"].rate
    assert d.completion["context"][1] == 1 and 0 < d.rate("context") < 1
