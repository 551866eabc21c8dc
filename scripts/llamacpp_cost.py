"""Measured verification cost in llama.cpp: one llama_decode over k draft tokens on top of a
cached prefix, as a chain and as trees, plus the cost of committing a side branch.

    .venv/bin/python scripts/llamacpp_cost.py [--model qwen2.5-coder-0.5b] [--past 300] [--reps 5]

Every figure is verify() + commit() through LlamaCppBackend (the code path the loop uses),
the minimum of `reps` (other load only ever adds time), in ms. `uptime` is printed first.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from codeswift.backends.llamacpp import LlamaCppBackend, resolve_gguf


def chain(k: int) -> np.ndarray:
    return np.arange(-1, k - 1)


def tree(k: int, branches: int) -> np.ndarray:
    """Root plus `branches` chains of near-equal length hanging from it (k nodes in all)."""
    parents = [-1]
    for b in range(branches):
        n = (k - 1) // branches + (b < (k - 1) % branches)
        for j in range(n):
            parents.append(0 if j == 0 else len(parents) - 1)
    return np.asarray(parents[:k])


def depth_of(parents: np.ndarray) -> np.ndarray:
    d = np.zeros(len(parents), np.int64)
    for i in range(1, len(parents)):
        d[i] = d[parents[i]] + 1
    return d


def time_step(be: LlamaCppBackend, parents: np.ndarray, reps: int, rng, keep=None) -> float:
    """Median ms of verify + commit (commit `keep`, default: reject everything)."""
    past = be.n_past
    times = []
    for _ in range(reps):
        toks = rng.integers(100, be.n_vocab - 1000, len(parents))
        t0 = time.perf_counter()
        be.verify(toks, parents, depth_of(parents))
        be.commit(past if keep is None else keep)
        times.append((time.perf_counter() - t0) * 1000)
        be._truncate(past)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--past", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ks", default="1,2,4,8,16,24,32,48,64")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--no-repack", action="store_true", help="no CPU weight repacking")
    args = ap.parse_args()
    print("uptime:", os.popen("uptime").read().strip())
    be = LlamaCppBackend(resolve_gguf(args.model), n_threads=args.threads, flash_attn=args.flash_attn,
                         repack=not args.no_repack)
    print(f"model {be.model_path} ({be.dtype}), threads {args.threads}, past {args.past} tokens")
    rng = np.random.default_rng(0)
    be.prefill(rng.integers(100, be.n_vocab - 1000, args.past).tolist(), None)
    time_step(be, chain(4), 2, rng)                                   # warm-up
    ks = [int(x) for x in args.ks.split(",")]
    shapes = {"chain": chain, "tree/2": lambda k: tree(k, 2), "tree/4": lambda k: tree(k, 4),
              "star": lambda k: tree(k, max(k - 1, 1))}
    best = {(k, name): float("inf") for k in ks for name in shapes}
    for _ in range(args.reps):          # interleaved: a burst of load hits every k alike
        for k in ks:
            for name, shape in shapes.items():
                best[k, name] = min(best[k, name], time_step(be, shape(k), 1, rng))
    print(f"{'k':>4} " + " ".join(f"{n:>8}" for n in shapes) + f" {'ms/tok':>8}   (verify + commit, ms)")
    for k in ks:
        row = [best[k, n] for n in shapes]
        print(f"{k:>4} " + " ".join(f"{m:8.1f}" for m in row) + f" {row[0] / k:8.2f}")
    # Commit of an accepted side branch (seq_keep + seq_cp) vs re-decoding the same tokens.
    k, parents = 16, tree(16, 4)
    side = [0, 9, 10, 11]                                             # root + 3 nodes of branch 2
    past = be.n_past
    keep = np.concatenate([np.arange(past), past + np.asarray(side)])
    t_side = time_step(be, parents, args.reps, rng, keep=keep)
    t_none = time_step(be, parents, args.reps, rng)
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        be.verify(rng.integers(100, 1000, len(side)), chain(len(side)), np.arange(len(side)))
        be.commit(past + len(side))
        times.append((time.perf_counter() - t0) * 1000)
        be._truncate(past)
    print(f"commit of a 4-node side branch in a 16-node tree: {t_side - t_none:+.2f} ms vs rejecting all"
          f" (re-decoding those 4 tokens instead would cost {min(times):.1f} ms)")
    be.finish([], None)


if __name__ == "__main__":
    main()
