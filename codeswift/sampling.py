"""Sampling mode (temperature > 0) that keeps the model's output distribution exactly.

Retrieved drafts are deterministic, i.e. one-hot draft distributions q = δ_x. The speculative
sampling rule then reads: accept x with probability min(1, p(x)/q(x)) = p(x); on rejection,
continue from the residual norm(max(0, p - q)) = p with x removed. Trying several children of
a node one after another on successive residuals is the multi-draft version of the same rule,
so every emitted token is distributed exactly as in plain ancestral sampling.

A draft model's token (self-speculation) is not one-hot: it was drawn from the draft's own
distribution q. Where such a draw was made (`TokenTree.draws`, keyed by the node it was drawn
at), it is tried first with the full rule: accept x with min(1, p(x)/q(x)), else continue from
norm(max(0, p - q)). The tree's children are then tried one-hot on that residual as above
(the drawn token again too: any fixed candidate on any residual keeps the rule exact). The
draw is used whether or not its node survived the budget, and when its node is missing an
accepted x simply ends the step as the next token: whether the q-stage happens must never
depend on the value drawn, or the rule would be biased.
"""
from __future__ import annotations

import numpy as np
import torch

from .tree import TokenTree


def probs_from_logits(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """[n, V] logits -> [n, V] float64 sampling distribution (temperature, then nucleus)."""
    p = torch.softmax(logits.double() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, idx = torch.sort(p, dim=-1, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < top_p     # always keeps the top token
        sorted_p = sorted_p * keep
        p = torch.zeros_like(p).scatter_(-1, idx, sorted_p)
        p = p / p.sum(-1, keepdim=True)
    return p


def sample_accept(tree: TokenTree, probs: torch.Tensor, gen: torch.Generator) -> tuple[list[int], int]:
    """Walk the tree with the speculative sampling rule; returns (accepted path, next token).

    `probs[i]` is the model's sampling distribution after node i.
    """
    children: dict[int, list[int]] = {}
    for i in range(1, len(tree)):
        children.setdefault(int(tree.parents[i]), []).append(i)
    path, key = [0], ()
    while True:
        p = probs[path[-1]].clone()
        nxt = None
        draw = tree.draws.get(key)
        if draw is not None:
            x, q = draw
            if torch.rand((), generator=gen, dtype=torch.float64) * q[x] < p[x]:    # u < p(x)/q(x)
                nxt = next((c for c in children.get(path[-1], []) if int(tree.tokens[c]) == x), None)
                if nxt is None:
                    return path, x                   # drawn token accepted; its node was not verified
                path.append(nxt)
                key += (x,)
                continue
            p = _residual(p, q)
        for c in children.get(path[-1], []):
            x = int(tree.tokens[c])
            if torch.rand((), generator=gen, dtype=torch.float64) < p[x]:
                nxt = c
                break
            p[x] = 0.0                               # residual after rejecting x
            p /= p.sum()
        if nxt is None:
            return path, int(torch.multinomial(p, 1, generator=gen))
        path.append(nxt)
        key += (int(tree.tokens[nxt]),)


def _residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)): what is left of p after a rejected draw from q. Empty only when
    p <= q everywhere, i.e. p == q, where a draw is never rejected (up to rounding: then p)."""
    r = (p - q.to(p.dtype)).clamp_min_(0.0)
    total = r.sum()
    return r / total if total > 0 else p


def chain_probs_exact(tree: TokenTree, probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """Reference for tests: the exact distribution of the first emitted token under sample_accept
    on a root with children (enumerated, no randomness)."""
    p = probs[0].astype(np.float64).copy()
    out: dict[tuple[int, ...], float] = {}
    mass = 1.0
    for c in [i for i in range(1, len(tree)) if tree.parents[i] == 0]:
        x = int(tree.tokens[c])
        out[(x,)] = out.get((x,), 0.0) + mass * p[x]
        mass *= 1 - p[x]
        p[x] = 0
        p /= p.sum()
    for x, px in enumerate(p):
        if px > 0:
            out[(x,)] = out.get((x,), 0.0) + mass * px
    return out
