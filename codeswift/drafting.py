"""Drafting: ask the sources (in parallel, gated by the timing policy), merge their drafts
into one token tree, and cut it to the size that maximises expected tokens per second."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from .budget import CostCurve, flat_curve
from .sources import Draft, DraftContext, DraftSource
from .timing import TimingPolicy
from .tree import TokenTree, build_tree, chain_tree, truncate

CHEAP = {"context", "pref"}          # in-memory, answered inline; others go to the pool


@dataclass
class SourceStats:
    """Per-source acceptance, with a prior so a new source is neither trusted nor ignored."""
    tested: float = 5.0               # prior: 40% -- optimistic priors make early trees too big
    accepted: float = 2.0
    proposed: int = 0
    hits: int = 0                     # tokens of this source on accepted paths (lifetime)
    decay: float = 0.99

    @property
    def rate(self) -> float:
        return self.accepted / self.tested

    def update(self, tested: int, accepted: int) -> None:
        self.tested = self.tested * self.decay + tested
        self.accepted = self.accepted * self.decay + accepted
        self.hits += accepted


@dataclass
class DraftConfig:
    max_nodes: int = 64               # hard cap; the cost curve usually picks fewer
    max_len: int = 16                 # tokens per draft
    max_drafts: int = 8               # per source per step
    tree: bool = True                 # False: verify only the best single chain
    slow_timeout_ms: float = 5.0      # slow sources answering later than this are dropped
    weights: dict = field(default_factory=dict)   # optional static source weights


class Drafter:
    def __init__(self, sources: list[DraftSource], cost: CostCurve | None = None,
                 config: DraftConfig | None = None, timing: TimingPolicy | None = None):
        self.sources = sources
        self.cost = cost or flat_curve()
        self.cfg = config or DraftConfig()
        self.timing = timing or TimingPolicy()
        self.stats: dict[str, SourceStats] = {}        # lifetime, across completions
        self.completion: dict[str, list[int]] = {}      # this completion: [proposed, accepted]
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="draft")
        self._busy: dict[str, Future] = {}
        self.time_ms = 0.0

    def reset(self, ctx: DraftContext) -> None:
        self.timing.reset()
        self.completion = {s.name: [0, 0] for s in self.sources}
        for s in self.sources:
            self.stats.setdefault(s.name, SourceStats())
            s.reset(ctx)

    # -- propose ------------------------------------------------------------------------
    def propose(self, ctx: DraftContext) -> TokenTree:
        t0 = time.perf_counter()
        drafts = self._collect(ctx)
        root = int(ctx.tokens[-1])
        weighted = [(d.tokens, self._weight(d), d.source, self.stats[d.source].rate) for d in drafts]
        if not weighted:
            tree = chain_tree(root, [])
        elif self.cfg.tree:
            tree = build_tree(root, weighted, self.cfg.max_nodes)
        else:
            best = max(weighted, key=lambda w: w[1])
            tree = build_tree(root, [best], self.cfg.max_nodes)
        n = self.cost.best_size(np.sort(tree.prob)[::-1], self.cfg.max_nodes)
        tree = truncate(tree, n)
        self.time_ms += (time.perf_counter() - t0) * 1000
        return tree

    def _weight(self, d: Draft) -> float:
        return self.cfg.weights.get(d.source, 1.0) * (1.0 + d.score)

    def _collect(self, ctx: DraftContext) -> list[Draft]:
        cfg = self.cfg
        drafts: list[Draft] = []
        for s in self.sources:
            if s.name in CHEAP:
                drafts += self._tagged(s, s.propose(ctx, cfg.max_len, cfg.max_drafts))
        best_cheap = max((len(d.tokens) for d in drafts), default=0)
        futures = {}
        for s in self.sources:
            if s.name in CHEAP or not self.timing.should_query(s.name, ctx.step, best_cheap):
                continue
            if s.name in self._busy and not self._busy[s.name].done():
                continue                       # still working on a previous step: skip it
            futures[s.name] = self._busy[s.name] = self._pool.submit(
                s.propose, ctx, cfg.max_len, cfg.max_drafts)
        if futures:
            done, _ = wait(futures.values(), timeout=cfg.slow_timeout_ms / 1000)
            for s in self.sources:
                f = futures.get(s.name)
                if f is not None and f in done and f.exception() is None:
                    drafts += self._tagged(s, f.result())
        return drafts

    def _tagged(self, source: DraftSource, drafts: list[Draft]) -> list[Draft]:
        for d in drafts:
            d.source = source.name
        self.stats[source.name].proposed += len(drafts)
        self.completion[source.name][0] += len(drafts)
        return [d for d in drafts if d.tokens]

    # -- update -------------------------------------------------------------------------
    def update(self, ctx: DraftContext, tree: TokenTree, path: list[int], accepted: list[int]) -> None:
        """Per-source acceptance: a node is 'tested' when its parent was accepted."""
        on_path = set(path)
        tested: dict[str, int] = {}
        hit: dict[str, int] = {}
        for i in range(1, len(tree)):
            if int(tree.parents[i]) in on_path:
                for s in tree.sources[i]:
                    tested[s] = tested.get(s, 0) + 1
                    if i in on_path:
                        hit[s] = hit.get(s, 0) + 1
        for name, n in tested.items():
            self.stats[name].update(n, hit.get(name, 0))
            self.completion[name][1] += hit.get(name, 0)
            self.timing.record(name, ctx.step, hit.get(name, 0))
        for s in self.sources:
            s.observe(ctx, accepted)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
