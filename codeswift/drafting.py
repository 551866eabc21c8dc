"""Drafting: ask the sources (in parallel, gated by the timing policy), merge their drafts
into one token tree, and cut it to the size that maximises expected tokens per second."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .budget import CostCurve, flat_curve
from .model_drafts import ModelDraft, ModelDraftSource
from .sources import PREF, SELF, Draft, DraftContext, DraftSource
from .timing import TimingPolicy
from .tree import TokenTree, build_tree, chain_tree, graft, pad, truncate



@dataclass
class SourceStats:
    """Acceptance of one kind of draft token (source, evidence level, first or later token),
    with a weak prior so a new kind is neither trusted nor ignored for long."""
    tested: float = 2.0               # prior: 40%, worth two observations
    accepted: float = 0.8
    proposed: int = 0
    hits: int = 0                     # tokens of this kind on accepted paths (lifetime)
    observed: int = 0                 # tested tokens (lifetime, not decayed)
    decay: float = 0.99
    explore: float = 0.5              # z of the upper confidence bound used for ranking

    @property
    def rate(self) -> float:
        return self.accepted / self.tested

    @property
    def optimistic_rate(self) -> float:
        """Upper confidence bound of the rate. Ranking by the plain mean never verifies a kind
        whose prior says it does not pay on this device's cost curve, so it never learns that
        it does; the bound shrinks as evidence accumulates (exploration that pays for itself)."""
        p = self.rate
        return min(0.995, p + self.explore * (p * (1 - p) / self.tested) ** 0.5)

    def update(self, tested: int, accepted: int) -> None:
        self.tested = self.tested * self.decay + tested
        self.accepted = self.accepted * self.decay + accepted
        self.hits += accepted
        self.observed += tested


@dataclass
class DraftConfig:
    max_nodes: int = 64               # hard cap; the cost curve usually picks fewer
    max_len: int = 16                 # tokens per draft
    # a source whose drafts are whole remembered answers may propose longer ones: where the
    # cost curve is flat the rest of the last answer is verified in one step
    max_len_by_source: dict = field(default_factory=lambda: {PREF: 64})
    max_drafts: int = 8               # per source per step
    tree: bool = True                 # False: verify only the best single chain
    slow_timeout_ms: float = 5.0      # slow sources answering later than this are dropped
    weights: dict = field(default_factory=dict)   # optional static source weights
    # verify a kind's draft regardless of cost until tested this often: with 2, one unlucky pair
    # of tries judged a kind for good (replay of 60 repo tasks: 204 of 703 steps left a draft
    # unverified that would have given 3+ tokens); learned rates persist, so this is paid once
    explore_min: int = 6
    explore_len: int = 8              # tokens verified by such an exploration, at most
    # ...and no more than a verify costing this many one-token steps allows: on a steep curve
    # (AVX2, llama.cpp Q4_K_M: 9 tokens cost 4.6x one) 8-token explorations were most of the
    # time of a cold request; where the curve is flat the full explore_len still fits
    explore_cost: float = 2.0
    # a model's own drafts (SELF): until this many of its tokens were verified, plan as if they
    # were accepted this often (SWIFT reports ~0.9 with confidence-aware stopping); only where
    # the cost curve lets that pay, so a steep device never pays for the exploration
    self_explore_min: int = 16
    self_explore_rate: float = 0.9


class Kind(NamedTuple):
    """What draft acceptance is learned per: the source, the evidence level and whether every
    draft of the step started with the same token."""
    source: str
    level: int
    agreed: bool = False


# Depth buckets of drafted tokens: 1, 2, 3-4, 5-8, 9-16, 17+ (bucket b starts at DEPTH_STARTS[b]).
DEPTH_STARTS = (1, 2, 3, 5, 9, 17)


def _chain_end(tree: TokenTree, n: int) -> int:
    """The deepest node of the tree's best chain (nodes 0..m) among its `n` most probable."""
    kept = set(np.argsort(-tree.prob, kind="stable")[:n].tolist())
    end = 0
    while end + 1 < len(tree) and int(tree.parents[end + 1]) == end and end + 1 in kept:
        end += 1
    return end


def _until_final(d: ModelDraft, ctx: DraftContext) -> tuple[list[int], list[float]]:
    """A model draft's tokens (and confidences) up to the first that ends the completion."""
    toks, conf = list(d.tokens), list(d.confidence)
    if ctx.is_final is not None:
        for i, t in enumerate(toks):
            if ctx.is_final(t):
                return toks[:i + 1], conf[:i + 1]
    return toks, conf


def depth_bucket(depth: int) -> int:
    """Which depth bucket a drafted token at `depth` (1 = first) is learned in."""
    return sum(depth >= s for s in DEPTH_STARTS) - 1


class StatKey(NamedTuple):
    """Acceptance of a kind's drafted token given its parent was accepted, per depth bucket.

    Per depth, not one rate for every later token: a remembered answer that survives its first
    tokens tends to survive whole (all or nothing), so its conditional acceptance rises with
    depth, which a geometric model (one later-token rate) undervalues: 0.9 per token leaves a
    30-token answer 4%, though most such answers were accepted whole."""
    kind: Kind
    bucket: int

    def to_json(self) -> dict:
        return {"source": self.kind.source, "level": self.kind.level, "agreed": self.kind.agreed,
                "bucket": self.bucket}

    @staticmethod
    def from_json(d: dict) -> "StatKey":
        return StatKey(Kind(str(d["source"]), int(d["level"]), bool(d["agreed"])), int(d["bucket"]))


def draft_kind(d: Draft, agreed: bool = False) -> Kind:
    """Acceptance is learned per source and evidence level. A draft's score is its match length
    (plus a fraction for repeat counts); longer matches are accepted more often. Four levels
    (1-2, 3-5, 6-11, 12+ matched tokens) keep the number of kinds, each explored before it is
    trusted, small. `agreed`: every draft of this step starts with the same token (no source
    saw an alternative), which on repository tasks doubled first-token acceptance of short
    matches (0.27 -> 0.51 for 1-token context matches)."""
    level = 0 if d.score < 3 else 1 if d.score < 6 else 2 if d.score < 12 else 3
    return Kind(d.source, level, agreed)


# Confidence levels of a model's own draft tokens (top-1 probability of its distribution):
# acceptance is learned per level, SWIFT's signal for when a draft goes wrong.
CONF_LEVELS = (0.4, 0.7, 0.9)


def self_kind(confidence: float) -> Kind:
    """The kind a self-drafted token is learned as: SELF at its confidence level."""
    return Kind(SELF, sum(confidence >= c for c in CONF_LEVELS))


def _useful(d: Draft, ctx: DraftContext) -> Draft:
    """The part of a draft that can be emitted: no deeper than the tokens left, and nothing
    after a token that ends the completion (EOS, or a newline when it stops at end of line).
    Verifying the rest could never pay."""
    toks = d.tokens if ctx.max_depth is None else d.tokens[:max(ctx.max_depth, 0)]
    if ctx.is_final is not None:
        for i, t in enumerate(toks):
            if ctx.is_final(t):
                toks = toks[:i + 1]
                break
    if len(toks) != len(d.tokens):
        d.tokens = list(toks)
    return d


class Drafter:
    def __init__(self, sources: list[DraftSource], cost: CostCurve | None = None,
                 config: DraftConfig | None = None, timing: TimingPolicy | None = None):
        self.sources = sources
        self.cost = cost or flat_curve()
        self.cfg = config or DraftConfig()
        self.timing = timing or TimingPolicy()
        self.stats: dict[StatKey, SourceStats] = {}    # lifetime, across completions
        self.proposed: dict[str, int] = {}              # drafts per source (lifetime)
        self.completion: dict[str, list[int]] = {}      # this completion: [proposed, accepted]
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="draft")
        self._busy: dict[str, Future] = {}
        self.time_ms = 0.0

    def reset(self, ctx: DraftContext, sampler=None) -> None:
        """Start a completion; `sampler` (loop.Sampler) when sampling (model sources draw from
        their own distribution then)."""
        self.timing.reset()
        self.completion = {s.name: [0, 0] for s in self.sources}
        for s in self.sources:
            self.proposed.setdefault(s.name, 0)
            if isinstance(s, ModelDraftSource):
                s.reset(ctx, sampler)
            else:
                s.reset(ctx)

    # -- propose ------------------------------------------------------------------------
    def propose(self, ctx: DraftContext) -> TokenTree:
        t0 = time.perf_counter()
        drafts = [d for d in map(lambda d: _useful(d, ctx), self._collect(ctx)) if d.tokens]
        root = int(ctx.tokens[-1])
        agreed = len({d.tokens[0] for d in drafts}) == 1
        weighted = []
        for d in drafts:
            kind = draft_kind(d, agreed)
            if d.prior is not None and StatKey(kind, 0) not in self.stats:
                self.stats[StatKey(kind, 0)] = SourceStats(accepted=SourceStats.tested * d.prior)
            weighted.append((d.tokens, self._weight(d), kind, self._rates(kind, len(d.tokens))))
        if not weighted:
            tree = chain_tree(root, [])
        elif self.cfg.tree:
            tree = build_tree(root, weighted, self.cfg.max_nodes)
        else:
            best = max(weighted, key=lambda w: w[1])
            tree = build_tree(root, [best], self.cfg.max_nodes)
        n = self.cost.best_size(np.sort(tree.prob)[::-1], self.cfg.max_nodes)
        explored = self._explore(root, weighted, tree) if n <= 1 else None
        if explored is not None and len(explored) > 1:
            tree = explored                    # a fresh kind's draft, verified whatever it costs
        else:
            tree, n = self._model_drafts(ctx, tree, n)
            if n > 1:
                # a bigger batch that costs no more: verify the next candidates too, or pad
                m = min(self.cost.batch_for(n), self.cfg.max_nodes)
                tree = pad(truncate(tree, m), m)
            else:
                tree = truncate(tree, 1)
        self.time_ms += (time.perf_counter() - t0) * 1000
        return tree

    # -- the model's own drafts ---------------------------------------------------------
    def _model_source(self) -> ModelDraftSource | None:
        return next((s for s in self.sources if isinstance(s, ModelDraftSource)), None)

    def _model_drafts(self, ctx: DraftContext, tree: TokenTree, n: int) -> tuple[TokenTree, int]:
        """Continue the best chain of the `n` nodes worth verifying with the model's own draft
        (from the root when there is none), as far as it pays; returns (tree, nodes worth
        verifying now). The draft's time is spent by then, so the tree is sized afresh."""
        src = self._model_source()
        if src is None:
            return tree, n
        start = _chain_end(tree, n)
        room = min(self.cfg.max_len, src.max_len, self.cfg.max_nodes - n)
        if ctx.max_depth is not None:
            room = min(room, ctx.max_depth - int(tree.depth[start]))
        prefix = [int(t) for t in tree.tokens[1:start + 1]]      # the best chain is nodes 0..m
        want = room if src.always else self._self_plan(src, tree, n, start, room)
        if want <= 0:
            return tree, n
        d = src.draft(ctx, prefix, want)
        self.proposed[src.name] = self.proposed.get(src.name, 0) + 1
        self.completion[src.name][0] += 1
        toks, conf = _until_final(d, ctx)
        if not toks:
            return tree, n
        kinds = [self_kind(c) for c in conf]
        probs, p, depth = [], float(tree.prob[start]), int(tree.depth[start])
        for i, k in enumerate(kinds):
            p *= self._stats(k, depth + i + 1).optimistic_rate
            probs.append(p)
        tree = graft(tree, start, toks, probs, kinds)
        for i, q in enumerate(d.q):           # sampling: where each token was drawn, and from what
            tree.draws[tuple(prefix + d.tokens[:i])] = (int(d.tokens[i]), q)
        if src.always:                         # measurement: verify the draft whatever it costs
            return tree, min(n + len(toks), self.cfg.max_nodes)
        return tree, self.cost.best_size(np.sort(tree.prob)[::-1], self.cfg.max_nodes)

    def _self_plan(self, src: ModelDraftSource, tree: TokenTree, n: int, start: int, room: int) -> int:
        """How many tokens to draft: the number maximising expected accepted tokens per unit
        of time, verification (the cost curve) and drafting (the source's cost) together;
        0 when no number beats verifying the `n` retrieved nodes alone."""
        kept = np.sort(tree.prob)[::-1][:n]
        base, base_cost = float(kept.sum()), self.cost(n)
        a = self.self_rate(src)
        p_start, given = float(tree.prob[start]), start + 1
        best, best_value, gain, reach = 0, base / base_cost, 0.0, 1.0
        for j in range(1, room + 1):
            reach *= a                         # P(the first j drafted tokens are all accepted)
            gain += p_start * reach
            value = (base + gain) / (self.cost(n + j) + src.draft_cost(given, j))
            if value > best_value:
                best, best_value = j, value
        return best

    def self_rate(self, src: ModelDraftSource) -> float:
        """Planning estimate of a self-drafted token's acceptance (given its parent's): the
        source's own measurement of its current layer set where it has one, else what
        verification taught (upper bound), explored optimistically while hardly tested."""
        measured = src.expected_rate()
        if measured is not None:
            return measured
        kinds = [st for k, st in self.stats.items() if k.kind.source == src.name]
        tested = sum(st.tested for st in kinds)
        rate = (SourceStats(tested=tested, accepted=sum(st.accepted for st in kinds)).optimistic_rate
                if tested else SourceStats().optimistic_rate)
        if sum(st.observed for st in kinds) < self.cfg.self_explore_min:
            rate = max(rate, self.cfg.self_explore_rate)
        return rate

    def _stats(self, kind: Kind, depth: int) -> SourceStats:
        """The kind's acceptance at `depth`. Until a depth bucket has been tested, its prior
        is the bucket before it (weight of two observations), not the global prior."""
        b = depth_bucket(depth)
        key = StatKey(kind, b)
        st = self.stats.get(key)
        if st is None:
            st = self.stats[key] = SourceStats()
        if b > 0 and not st.observed:
            st.accepted = st.tested * self._stats(kind, DEPTH_STARTS[b - 1]).rate
        return st

    def _rates(self, kind: Kind, n: int) -> tuple[float, ...]:
        """Per-depth acceptance (upper bounds) for the first `n` tokens of a draft of `kind`."""
        per_bucket = [self._stats(kind, start).optimistic_rate for start in DEPTH_STARTS[:depth_bucket(n) + 1]]
        return tuple(per_bucket[depth_bucket(d)] for d in range(1, n + 1))

    def _explore(self, root: int, weighted: list, tree: TokenTree) -> TokenTree:
        """Nothing is worth verifying by the current estimates. If a kind of draft has hardly
        been tested, verify its best draft anyway (at most `explore_len` tokens): estimates
        that are never tested never improve. Each kind is explored `explore_min` times in the
        engine's lifetime, so the cost is bounded."""
        fresh = [w for w in weighted if self._stats(w[2], 1).observed < self.cfg.explore_min]
        if not fresh:
            return truncate(tree, 1)
        toks, _, kind, _ = max(fresh, key=lambda w: w[1])
        toks = toks[:self.explore_len()]
        chain = chain_tree(root, toks)
        chain.sources = [frozenset()] + [frozenset({kind})] * len(toks)
        return chain

    def explore_len(self) -> int:
        """Tokens an exploration verifies: up to `explore_len`, as long as verifying them (with
        the root) costs at most `explore_cost` one-token steps on this device's curve; >= 1."""
        limit = self.cfg.explore_cost * self.cost(1)
        n = 1
        while n < self.cfg.explore_len and self.cost(n + 2) <= limit:
            n += 1
        return n

    def _weight(self, d: Draft) -> float:
        return self.cfg.weights.get(d.source, 1.0) * (1.0 + d.score)

    def _collect(self, ctx: DraftContext) -> list[Draft]:
        cfg = self.cfg
        drafts: list[Draft] = []
        for s in self.sources:
            if s.cheap:
                drafts += self._tagged(s, s.propose(ctx, cfg.max_len_by_source.get(s.name, cfg.max_len),
                                                    cfg.max_drafts))
        best_cheap = max((len(d.tokens) for d in drafts), default=0)
        futures = {}
        for s in self.sources:
            if (s.cheap or isinstance(s, ModelDraftSource)
                    or not self.timing.should_query(s.name, ctx.step, best_cheap)):
                continue
            if s.name in self._busy and not self._busy[s.name].done():
                continue                       # still working on a previous step: skip it
            futures[s.name] = self._busy[s.name] = self._pool.submit(
                s.propose, ctx, cfg.max_len_by_source.get(s.name, cfg.max_len), cfg.max_drafts)
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
        self.proposed[source.name] = self.proposed.get(source.name, 0) + len(drafts)
        self.completion[source.name][0] += len(drafts)
        return [d for d in drafts if d.tokens]

    def export_stats(self) -> list[dict]:
        """Learned acceptance per kind of draft token (calibration, no content), for saving."""
        return [{**k.to_json(), "tested": st.tested, "accepted": st.accepted, "observed": st.observed}
                for k, st in self.stats.items() if st.observed]

    def import_stats(self, data: list[dict]) -> int:
        """Start from saved acceptance (see export_stats); returns the kinds loaded. Entries in
        another shape (an older version's file) are skipped: the kind is learned afresh."""
        n = 0
        for d in data if isinstance(data, list) else ():
            try:
                key = StatKey.from_json(d)
                tested, accepted, observed = float(d["tested"]), float(d["accepted"]), int(d["observed"])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if 0 <= accepted <= tested and tested > 0 and observed >= 0:
                self.stats[key] = SourceStats(tested=tested, accepted=accepted, observed=observed)
                n += 1
        return n

    def rate(self, name: str) -> float:
        """A source's acceptance rate over all its kinds of draft tokens (for reports)."""
        kinds = [st for k, st in self.stats.items() if k.kind.source == name]
        tested = sum(st.tested for st in kinds)
        return sum(st.accepted for st in kinds) / tested if tested else SourceStats().rate

    # -- update -------------------------------------------------------------------------
    def update(self, ctx: DraftContext, tree: TokenTree, path: list[int], accepted: list[int]) -> None:
        """Per-source acceptance: a node is 'tested' when its parent was accepted."""
        on_path = set(path)
        tested: dict[tuple[Kind, int], int] = {}          # (kind, depth bucket start) -> count
        hit: dict[tuple[str, int], int] = {}
        for i in range(1, len(tree)):
            if int(tree.parents[i]) in on_path:
                for kind in tree.sources[i]:
                    key = (kind, DEPTH_STARTS[depth_bucket(int(tree.depth[i]))])
                    tested[key] = tested.get(key, 0) + 1
                    if i in on_path:
                        hit[key] = hit.get(key, 0) + 1
        by_source: dict[str, int] = {}
        for key, n in tested.items():
            kind, depth = key
            self._stats(kind, depth).update(n, hit.get(key, 0))
            name = kind.source
            by_source[name] = by_source.get(name, 0) + hit.get(key, 0)
        for name, h in by_source.items():
            self.completion[name][1] += h
            self.timing.record(name, ctx.step, h)
        for s in self.sources:
            s.observe(ctx, accepted)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
