"""Offline replay of the speculative loop: the drafter's decisions, timed by a cost curve.

A `ReplayBackend` knows the model's greedy continuation of each prompt (recorded once from a
real run) and answers `verify` with it, so `Engine.complete` runs its real drafter, sources,
budget and acceptance code unchanged while no model runs. Time is simulated from a measured
cost curve: a step over a tree of n nodes costs curve(n). This measures *decisions* free of
timing noise (another process on the machine, a page-cache miss) in seconds instead of minutes;
`codeswift bench` stays the only source of speed claims.

    python -m codeswift.replay --gguf FILE --tasks ../shared/bench/repo-dev --limit 16 --calibrate 8
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .budget import CostCurve


class ReplayBackend:
    """Backend protocol over recorded greedy continuations (prompt tuple -> tokens)."""

    name = "replay"

    def __init__(self, truth: dict[tuple, list[int]], curve: CostCurve, eos: int, device="cpu-t2", dtype="replay"):
        self.truth, self.curve, self.eos = truth, curve, eos
        self.device, self.dtype = device, dtype
        self.full: list[int] = []
        self.n_past = 0
        self.sim_ms = 0.0
        self.steps: list[int] = []               # tree size per step
        self.store = _NoStore()

    def prefill(self, tokens: list[int], key: str | None = None, logits: bool = True) -> tuple[int, int]:
        # logits=False: `tokens` is a recorded prompt less its last token (the first tree root)
        head = tuple(tokens)
        prompt = head if logits else next((p for p in self.truth if p[:-1] == head), None)
        cont = self.truth.get(prompt) if prompt is not None else None
        if cont is None:
            raise KeyError("no recorded continuation for this prompt")
        self.full = list(prompt) + list(cont)
        self.n_past = len(tokens)
        return (self._next(len(tokens) - 1) if logits else -1), 0

    def _next(self, pos: int) -> int:
        """The model's argmax after position `pos` of the true sequence."""
        return self.full[pos + 1] if pos + 1 < len(self.full) else self.eos

    def verify(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> np.ndarray:
        n = len(tokens)
        self.sim_ms += self.curve(n)
        self.steps.append(n)
        on_true = np.zeros(n, bool)
        out = np.full(n, -1, np.int64)
        base = self.n_past                        # position of the root token
        for i in range(n):
            pos = base + int(depth[i])
            ok = pos < len(self.full) and int(tokens[i]) == self.full[pos]
            on_true[i] = ok and (parents[i] < 0 or on_true[parents[i]])
            if on_true[i]:
                out[i] = self._next(pos)
        return out

    def commit(self, keep) -> None:
        self.n_past = int(keep) if np.isscalar(keep) else len(keep)

    def finish(self, tokens: list[int], key: str | None) -> None:
        pass

    def step(self, token: int) -> int:
        self.n_past += 1
        return self._next(self.n_past - 1)


class _NoStore:
    def clear(self) -> None:
        pass


def record(gguf: Path, prompts: list[list[int]], max_new: int, eos: set[int], threads: int | None) -> dict:
    """Greedy continuations by plain llama.cpp (the reference the bench compares with)."""
    from .backends.llamacpp import LlamaCppBackend
    from .bench.llamacpp import run_llamacpp_ar
    be = LlamaCppBackend(gguf, n_ctx=4096, n_threads=threads)
    # past the last token (EOS, cut by finalize) the replay answers EOS itself
    return {tuple(p): run_llamacpp_ar(be, p, max_new, eos)["tokens"] for p in prompts}


def main(argv: list[str] | None = None) -> int:
    from .bench.tasks import RepoWorkspace, load_tasks
    from .engine import ALL_SOURCES, Engine, EngineConfig
    from .prompt import PromptBudget
    from .types import CompletionRequest
    from .backends.llamacpp import load_gguf_tokenizer
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--calibrate", type=int, default=0, help="tasks replayed first, not counted")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--curve", help="cost curve JSON {ks, ms} (default: the cached one for --gguf)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--truth-cache", default="/tmp/codeswift-replay-truth.json")
    args = ap.parse_args(argv)
    tok = load_gguf_tokenizer(args.gguf, Path(args.gguf))
    budget = PromptBudget(prefix=512, suffix=128)
    tasks = load_tasks(args.tasks, args.limit + args.calibrate)
    curve = CostCurve(**{k: tuple(v) for k, v in json.loads(Path(args.curve).read_text()).items() if k in ("ks", "ms")})
    cfg = EngineConfig(model=args.gguf, sources=ALL_SOURCES, prompt=budget, persist_stats=False, measure_cost=False)
    be = ReplayBackend({}, curve, eos=0)
    eng = Engine(be, tok, cfg, model_id="replay")
    eng.cost = curve
    eng.drafter.cost = curve
    be.eos = next(iter(eng.prompts.stop_ids))
    ws = RepoWorkspace()
    reqs = []
    for t in tasks:
        stop = "line" if t.kind == "line" else "block"
        reqs.append((t, CompletionRequest(prefix=t.prefix, suffix=t.suffix, path=t.path, max_tokens=args.max_tokens,
                                          stop=stop, doc_id=t.task_id)))
    cache = Path(args.truth_cache)
    truth = {}
    if cache.is_file():
        truth = {tuple(json.loads(k)): v for k, v in json.loads(cache.read_text()).items()}
    missing = [eng.prompts.build(r) for _, r in reqs]
    missing = [p for p in missing if tuple(p) not in truth]
    if missing:
        truth.update(record(Path(args.gguf), missing, args.max_tokens + 16, set(eng.prompts.stop_ids), args.threads))
        cache.write_text(json.dumps({json.dumps(list(k)): v for k, v in truth.items()}))
    be.truth = truth
    tot_tokens = tot_ms = 0.0
    sizes: list[int] = []
    t0 = time.perf_counter()
    for i, (task, req) in enumerate(reqs):
        repo = ws.prepare(task)
        eng.attach_repo(str(repo) if repo else None)
        eng.reset_caches()
        be.sim_ms, be.steps = 0.0, []
        res = eng.complete(req)
        if i < args.calibrate:
            continue
        n = len(res.tokens)
        tot_tokens += n - 1                   # the first token comes from the prefill in both
        tot_ms += be.sim_ms
        sizes += be.steps
        print(f"{task.task_id:24} {n:3} tokens {len(be.steps):3} steps  sim {be.sim_ms:6.0f} ms  "
              f"vs ar {(n - 1) * curve(1):6.0f} ms  x{(n - 1) * curve(1) / max(be.sim_ms, 1e-9):.2f}")
    ws.close()
    print(f"total: {tot_tokens:.0f} tokens, {len(sizes)} steps ({tot_tokens / max(len(sizes), 1):.2f}/step), "
          f"mean tree {np.mean(sizes):.2f}; simulated decode speedup vs plain greedy "
          f"x{tot_tokens * curve(1) / max(tot_ms, 1e-9):.3f}  ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
