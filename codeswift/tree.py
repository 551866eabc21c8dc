"""Token trees: merge draft sequences into a trie, pick the nodes worth verifying, and turn
them into the tensors one tree-attention forward pass needs. Pure functions, no model.

Node 0 is the root: the last accepted token, not yet in the KV cache. Every other node is a
draft token whose parent precedes it (topological order); the most probable chain is laid out
first (nodes 0..m), so accepting along it keeps the KV cache contiguous.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TokenTree:
    tokens: np.ndarray        # [n] int64, tokens[0] = root
    parents: np.ndarray       # [n] int64, parents[0] = -1, parents[i] < i
    depth: np.ndarray         # [n] int64, depth[0] = 0
    prob: np.ndarray          # [n] float, estimated probability that the node is accepted
    sources: list[frozenset] = field(default_factory=list)   # [n] sources that proposed node i
    # sampling mode: tokens a draft model drew from its own distribution q, keyed by the tokens
    # of the path (after the root) to the node they were drawn at: path -> (token, q [V]).
    # Keyed by path, not index, so truncate/pad/graft keep them; see sampling.sample_accept.
    draws: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class _Trie:
    token: int
    weight: float = 0.0
    rate_sum: float = 0.0      # weight-weighted per-token acceptance rate of contributing drafts
    sources: set = field(default_factory=set)
    children: dict = field(default_factory=dict)


def build_tree(root_token: int, drafts: list[tuple[list[int], float, str, float]],
               max_nodes: int) -> TokenTree:
    """Merge drafts into a trie and keep the `max_nodes` (incl. root) most probable nodes.

    `drafts`: (tokens, weight, source, rate) with `rate` the source's measured probability that
    a drafted token is accepted given its parent was: one number, or one per depth (the last
    one serves deeper tokens too; (first, later) is the two-rate case). Node probability:
    p(child) = p(parent) * rate(child) * weight(child) / weight(parent), so a node can never be
    more probable than its parent and the kept set is always ancestor-closed.
    """
    root = _Trie(int(root_token))
    for toks, w, src, rate in drafts:
        if w <= 0:
            continue
        rates = rate if isinstance(rate, tuple) else (rate,)
        root.weight += w
        node = root
        for j, t in enumerate(toks):
            node = node.children.setdefault(int(t), _Trie(int(t)))
            node.weight += w
            node.rate_sum += w * rates[min(j, len(rates) - 1)]
            node.sources.add(src)
    # Best-first expansion: pop the most probable frontier node until the budget is spent.
    kept: list[tuple[_Trie, int, float]] = [(root, -1, 1.0)]       # (trie node, parent idx, prob)
    heap: list[tuple[float, int, int, _Trie]] = []
    counter = 0

    def push_children(node: _Trie, idx: int, p: float) -> None:
        nonlocal counter
        for child in node.children.values():
            pc = p * (child.rate_sum / child.weight) * (child.weight / node.weight)
            heapq.heappush(heap, (-pc, counter, idx, child))
            counter += 1

    push_children(root, 0, 1.0)
    while heap and len(kept) < max_nodes:
        negp, _, parent_idx, child = heapq.heappop(heap)
        kept.append((child, parent_idx, -negp))
        push_children(child, len(kept) - 1, -negp)
    return _layout(kept)


def _layout(kept: list[tuple[_Trie, int, float]]) -> TokenTree:
    """Re-number kept nodes in DFS order, most probable child first (best chain = 0..m)."""
    children: dict[int, list[int]] = {}
    for i, (_, parent, _) in enumerate(kept):
        if parent >= 0:
            children.setdefault(parent, []).append(i)
    order: list[tuple[int, int]] = []          # (old index, new parent index)
    stack = [(0, -1)]
    while stack:
        old, new_parent = stack.pop()
        order.append((old, new_parent))
        new_idx = len(order) - 1
        kids = sorted(children.get(old, []), key=lambda k: kept[k][2])   # least probable first
        stack.extend((k, new_idx) for k in kids)                          # so best pops first
    n = len(order)
    tokens = np.empty(n, np.int64)
    parents = np.empty(n, np.int64)
    depth = np.zeros(n, np.int64)
    prob = np.empty(n, np.float64)
    sources = []
    for new, (old, new_parent) in enumerate(order):
        node, _, p = kept[old]
        tokens[new], parents[new], prob[new] = node.token, new_parent, p
        depth[new] = 0 if new_parent < 0 else depth[new_parent] + 1
        sources.append(frozenset(node.sources))
    return TokenTree(tokens, parents, depth, prob, sources)


def chain_tree(root_token: int, draft: list[int]) -> TokenTree:
    """A single chain (no branching): root followed by `draft`."""
    n = 1 + len(draft)
    return TokenTree(np.asarray([root_token, *draft], np.int64), np.arange(-1, n - 1, dtype=np.int64),
                     np.arange(n, dtype=np.int64), np.ones(n), [frozenset()] * n)


def truncate(tree: TokenTree, n: int) -> TokenTree:
    """Keep the n most probable nodes; nodes are topological, so keep by prob then re-layout."""
    if n >= len(tree):
        return tree
    keep = np.sort(np.argsort(-tree.prob, kind="stable")[:n])   # ancestor-closed: p(child) <= p(parent)
    remap = {int(old): new for new, old in enumerate(keep)}
    parents = np.asarray([-1 if tree.parents[o] < 0 else remap[int(tree.parents[o])] for o in keep], np.int64)
    return TokenTree(tree.tokens[keep], parents, tree.depth[keep], tree.prob[keep],
                     [tree.sources[o] for o in keep], tree.draws)


def pad(tree: TokenTree, n: int) -> TokenTree:
    """Extend the tree to n nodes by continuing its most probable leaf with zero-probability
    nodes (the leaf's own token repeated: code repeats, and any token is lossless to verify).
    For batch sizes that run faster than smaller ones on this device's kernels."""
    extra = n - len(tree)
    if extra <= 0:
        return tree
    leaf = int(np.argmax(tree.prob * (tree.depth + 1) * _is_leaf(tree.parents)))
    tok, d = int(tree.tokens[leaf]), int(tree.depth[leaf])
    parents = np.r_[tree.parents, leaf, len(tree) + np.arange(extra - 1)].astype(np.int64)
    return TokenTree(np.r_[tree.tokens, np.full(extra, tok)].astype(tree.tokens.dtype), parents,
                     np.r_[tree.depth, d + 1 + np.arange(extra)].astype(tree.depth.dtype),
                     np.r_[tree.prob, np.zeros(extra)].astype(tree.prob.dtype),
                     list(tree.sources) + [frozenset()] * extra, tree.draws)


def graft(tree: TokenTree, at: int, tokens: list[int], probs: list[float], kinds: list) -> TokenTree:
    """Hang the chain `tokens` under node `at` (a model's own draft continuing that path).

    A token already there is merged: its node keeps the larger probability and both sources.
    `probs` must not rise along the chain nor exceed p(at), so the tree stays ancestor-closed
    under truncate. Re-laid out with the most probable chain first (nodes 0..m)."""
    children: dict[int, dict[int, int]] = {}
    for i in range(1, len(tree)):
        children.setdefault(int(tree.parents[i]), {})[int(tree.tokens[i])] = i
    toks, pars = tree.tokens.tolist(), tree.parents.tolist()
    prob, srcs = tree.prob.astype(np.float64).tolist(), list(tree.sources)
    node = at
    for t, p, k in zip(tokens, probs, kinds):
        c = children.setdefault(node, {}).get(int(t))
        if c is None:
            c = children[node][int(t)] = len(toks)
            toks.append(int(t))
            pars.append(node)
            prob.append(float(p))
            srcs.append(frozenset({k}))
        else:
            prob[c], srcs[c] = max(prob[c], float(p)), srcs[c] | {k}
        node = c
    return _relayout(np.asarray(toks, np.int64), np.asarray(pars, np.int64), np.asarray(prob), srcs,
                     tree.draws)


def _relayout(tokens: np.ndarray, parents: np.ndarray, prob: np.ndarray, sources: list,
              draws: dict) -> TokenTree:
    """DFS order, most probable child first (as _layout), of a tree given by parent links."""
    kids: dict[int, list[int]] = {}
    for i in range(1, len(tokens)):
        kids.setdefault(int(parents[i]), []).append(i)
    order, new_parent, stack = [], {}, [(0, -1)]
    while stack:
        old, par = stack.pop()
        new_parent[len(order)] = par
        order.append(old)
        stack.extend((k, len(order) - 1) for k in sorted(kids.get(old, []), key=lambda k: prob[k]))
    idx = np.asarray(order, np.int64)
    par = np.asarray([new_parent[i] for i in range(len(order))], np.int64)
    depth = np.zeros(len(order), np.int64)
    for i in range(1, len(order)):
        depth[i] = depth[par[i]] + 1
    return TokenTree(tokens[idx], par, depth, prob[idx], [sources[o] for o in order], draws)


def _is_leaf(parents: np.ndarray) -> np.ndarray:
    leaf = np.ones(len(parents), bool)
    leaf[parents[parents >= 0]] = False
    return leaf


def ancestor_mask(parents: np.ndarray) -> np.ndarray:
    """[n, n] bool: mask[i, j] = node j is node i or one of its ancestors."""
    n = len(parents)
    mask = np.zeros((n, n), dtype=bool)
    for i in range(n):
        p = parents[i]
        if p >= 0:
            mask[i] = mask[p]      # parents precede children, so row p is complete
        mask[i, i] = True
    return mask


def greedy_accept(tree: TokenTree, argmax: list[int] | np.ndarray) -> tuple[list[int], int]:
    """Longest root-to-leaf path whose every token equals the model's argmax at its parent.

    Returns (accepted node indices starting with the root, bonus token) where the bonus token
    is the model's own argmax after the last accepted node: it is always correct output.
    """
    children: dict[int, dict[int, int]] = {}
    for i in range(1, len(tree)):
        children.setdefault(int(tree.parents[i]), {})[int(tree.tokens[i])] = i
    path = [0]
    while True:
        want = int(argmax[path[-1]])
        nxt = children.get(path[-1], {}).get(want)
        if nxt is None:
            return path, want
        path.append(nxt)


def kv_keep_positions(past_len: int, path: list[int]) -> np.ndarray | int:
    """KV rows to keep after accepting `path` (tree node indices, root first).

    Returns an int L when the rows are exactly 0..L-1 (cheap crop), else the index array.
    """
    if path == list(range(len(path))):
        return past_len + len(path)
    return np.concatenate([np.arange(past_len), past_len + np.asarray(path, np.int64)])
