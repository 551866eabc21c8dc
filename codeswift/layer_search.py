"""Which decoder layers the self-draft skips: SWIFT's on-the-fly layer-set search.

The objective is how well the skipped-layer model predicts what the full model itself wrote:
on the tokens just generated (greedy: each one is the full model's argmax given those before
it), the fraction where the draft's argmax agrees, teacher-forced in one forward pass. That is
the acceptance of a drafted token given its parent was accepted, for this set of layers. A set
is worth more when it agrees as often while running fewer layers; `value` weighs the two by
the device's cost of drafting and verifying.

Search: random moves around the best set so far (swap a skipped layer for a kept one, skip one
more, skip one fewer), each judged against the best set on the same tokens (a paired
comparison: one completion's tokens are easier than another's). Deterministic under a seed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


def initial_skip(n_layers: int) -> frozenset[int]:
    """A start: every other layer of the middle half (early and last layers matter most, SWIFT
    and LayerSkip both find); one middle layer in a model too small for that."""
    lo, hi = n_layers // 4, max(n_layers // 4 + 1, (3 * n_layers) // 4)
    return frozenset(range(lo + 1, hi, 2)) or frozenset({min(n_layers // 2, n_layers - 1)})


@dataclass
class Trial:
    skip: frozenset[int]
    match: float                  # agreement with the full model on the trial's tokens
    best_match: float             # the best set's agreement on the same tokens
    taken: bool


@dataclass
class LayerSearch:
    """The best skip set found so far and the proposals around it."""
    n_layers: int
    seed: int = 0
    best: frozenset[int] = frozenset()
    match: float | None = None    # the best set's agreement (moving average over trials)
    evals: int = 0                # windows judged (lifetime, persisted)
    history: list[Trial] = field(default_factory=list)   # this process's trials, for tests/reports
    smoothing: float = 0.7

    def __post_init__(self):
        if self.n_layers < 2:
            raise ValueError("layer skipping needs at least two decoder layers")
        self.best = frozenset(self.best) or initial_skip(self.n_layers)
        self._rng = np.random.default_rng(self.seed)

    # -- proposals ----------------------------------------------------------------------
    def proposals(self, k: int) -> list[frozenset[int]]:
        """Up to `k` distinct sets one move away from the best one."""
        out: list[frozenset[int]] = []
        for _ in range(8 * k):
            cand = self._move(self.best)
            if cand != self.best and cand not in out:
                out.append(cand)
            if len(out) == k:
                break
        return out

    def _move(self, skip: frozenset[int]) -> frozenset[int]:
        skipped, kept = sorted(skip), sorted(set(range(self.n_layers)) - skip)
        moves = ["swap"] + (["grow"] if len(kept) > 1 else []) + (["shrink"] if len(skipped) > 1 else [])
        move = moves[int(self._rng.integers(len(moves)))]
        if move == "grow":
            return skip | {kept[int(self._rng.integers(len(kept)))]}
        if move == "shrink":
            return skip - {skipped[int(self._rng.integers(len(skipped)))]}
        out = skipped[int(self._rng.integers(len(skipped)))]
        return (skip - {out}) | {kept[int(self._rng.integers(len(kept)))]}

    # -- judging ------------------------------------------------------------------------
    def judge(self, best_match: float, scored: list[tuple[frozenset[int], float]],
              value: Callable[[float, frozenset[int]], float]) -> bool:
        """One window: the best set agreed `best_match`, each proposal its own; the proposal of
        highest value replaces the best set when it beats it. Returns whether it did."""
        self.evals += 1
        self.match = best_match if self.match is None else (
            self.smoothing * self.match + (1 - self.smoothing) * best_match)
        top = max(scored, key=lambda sm: value(sm[1], sm[0]), default=None)
        taken = top is not None and value(top[1], top[0]) > value(best_match, self.best) + 1e-12
        for skip, m in scored:
            self.history.append(Trial(skip, m, best_match, taken and skip == top[0]))
        if taken:
            self.best, self.match = top[0], top[1]
        return taken

    # -- persistence --------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"skip": sorted(self.best), "n_layers": self.n_layers, "match": self.match,
                "evals": self.evals}

    def load(self, path: Path) -> bool:
        """Start from a saved best set of the same model (see save); False if none fits."""
        try:
            d = json.loads(path.read_text())
            skip = frozenset(int(i) for i in d["skip"])
            if int(d["n_layers"]) != self.n_layers or not skip or len(skip) >= self.n_layers \
                    or not all(0 <= i < self.n_layers for i in skip):
                return False
            match = d.get("match")
            self.best, self.evals = skip, int(d.get("evals", 0))
            self.match = float(match) if match is not None else None
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def save(self, path: Path, label: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**self.to_json(), "for": label}))
            tmp.replace(path)
        except OSError:
            pass                       # read-only cache: keep searching in memory
