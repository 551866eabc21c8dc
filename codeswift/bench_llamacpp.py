"""llama.cpp baselines for `codeswift bench`: plain greedy and llama-cpp-python's prompt lookup.

Both return {"tokens", "prefill_ms", "decode_ms"} with tokens cut by `loop.finalize`, the same
rule codeswift's own loop uses, so outputs compare token for token.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .backends.llamacpp import LlamaCppBackend, _llama_cpp
from .loop import StopCheck, finalize


def _done(out: list[int], max_new: int, eos_ids: set[int], stop: StopCheck | None) -> bool:
    return len(out) >= max_new or (out and out[-1] in eos_ids) or (stop is not None and stop(out) is not None)


def run_llamacpp_ar(backend: LlamaCppBackend, prompt: list[int], max_new: int, eos_ids: set[int],
                    stop: StopCheck | None = None, key: str | None = None) -> dict:
    """Plain llama.cpp greedy: one token per `llama_decode`, on the backend's own context.

    `key` None (default) prefills from scratch, as a cold completion does.
    """
    t0 = time.perf_counter()
    tok, _ = backend.prefill(prompt, key)
    t1 = time.perf_counter()
    out = [tok]
    try:
        while not _done(out, max_new, eos_ids, stop):
            tok = backend.step(tok)
            out.append(tok)
    finally:
        backend.finish(list(prompt) + out, key)
    t2 = time.perf_counter()
    tokens, _ = finalize(out, max_new, eos_ids, stop)
    return {"tokens": tokens, "prefill_ms": (t1 - t0) * 1000, "decode_ms": (t2 - t1) * 1000}


def make_pld_llama(model_path: str | Path, n_ctx: int = 4096, num_pred_tokens: int = 10,
                   max_ngram_size: int = 2, n_threads: int | None = None):
    """A high-level `Llama` with llama-cpp-python's `LlamaPromptLookupDecoding` draft model.

    It needs its own instance: the draft model reads every position's logits, so the Llama must
    be built with logits_all=True (without it, prompts over n_batch=512 tokens overflow the
    scores buffer and crash). Memory on top of the verifier: the weights are mmap'd and shared
    through the page cache; the extra is a KV cache of n_ctx tokens and a float32 scores array
    of n_ctx x n_vocab (4096 x 151936 x 4 B = 2.5 GB for Qwen2.5-Coder), plus llama.cpp's own
    output buffer of n_batch x n_vocab floats (0.3 GB).
    """
    import os
    lc = _llama_cpp()
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
    draft = LlamaPromptLookupDecoding(max_ngram_size=max_ngram_size, num_pred_tokens=num_pred_tokens)
    return lc.Llama(str(model_path), n_ctx=n_ctx, logits_all=True, draft_model=draft,
                    n_threads=n_threads or os.cpu_count(), verbose=False)


def run_llamacpp_pld(llm, prompt: list[int], max_new: int, eos_ids: set[int],
                     stop: StopCheck | None = None, reuse: bool = False) -> dict:
    """llama-cpp-python's own prompt-lookup speculative decoding, greedy (temp 0), through
    `Llama.generate`. `llm` comes from `make_pld_llama`; `reuse=False` forgets its KV first."""
    if not reuse:
        llm.reset()
    out: list[int] = []
    t0 = time.perf_counter()
    t1 = None
    gen = llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
    try:
        for tok in gen:
            if t1 is None:
                t1 = time.perf_counter()
            out.append(int(tok))
            if _done(out, max_new, eos_ids, stop):
                break
    finally:
        gen.close()
    t2 = time.perf_counter()
    t1 = t1 or t2
    tokens, _ = finalize(out, max_new, eos_ids, stop)
    return {"tokens": tokens, "prefill_ms": (t1 - t0) * 1000, "decode_ms": (t2 - t1) * 1000}


# -- quick comparison: python -m codeswift.bench_llamacpp --------------------------------------
def compare(model: str, tasks_spec: str, limit: int, max_tokens: int, rounds: int,
            threads: int | None = None, kinds: set[str] | None = None,
            context_prior: float | None = None) -> list[dict]:
    """Cold completions of `limit` tasks by llamacpp-ar, codeswift-llamacpp (context drafts
    only; tree and chain) and llamacpp-pld, interleaved per task; each method's decode time is
    its minimum over `rounds` (load on a shared machine only ever adds time).

    `context_prior` (not a product setting) replaces the drafter's acceptance prior for the
    context source: with a steep cost curve the default prior may never let a draft be
    verified, so the rate is never learned."""
    from .backends.llamacpp import load_gguf_tokenizer, resolve_gguf
    from .budget import measure
    from .bench_tasks import load_tasks
    from .engine import Engine, EngineConfig
    from .stops import make_stop
    from .types import CompletionRequest
    cfg = EngineConfig(model=model, backend="llamacpp", sources=("context",), kv_reuse=False,
                       max_tokens=max_tokens, measure_cost=False)
    gguf = resolve_gguf(model)
    backend, tok = LlamaCppBackend(gguf, n_threads=threads), load_gguf_tokenizer(model, gguf)
    cost = measure(backend, len(tok))                  # fresh, under this run's conditions
    print(json.dumps({"device": backend.device, "cost_ms": dict(zip(cost.ks, map(lambda m: round(m, 1), cost.ms)))}))
    engines = {}
    for name, tree in (("codeswift-llamacpp", True), ("codeswift-llamacpp-chain", False)):
        engines[name] = e = Engine(backend, tok, EngineConfig(**{**cfg.__dict__, "tree": tree}))
        e.cost = e.drafter.cost = cost
        if context_prior is not None:
            from .drafting import SourceStats
            e.drafter.stats["context"] = SourceStats(tested=5.0, accepted=5.0 * context_prior)
    pld = make_pld_llama(backend.model_path, n_threads=threads)
    prompts = engines["codeswift-llamacpp"].prompts
    eos = prompts.stop_ids
    rows = []
    for task in load_tasks(tasks_spec, limit=limit, kinds=kinds):
        req = CompletionRequest(prefix=task.prefix, suffix=task.suffix, max_tokens=max_tokens, stop=task.stop)
        prompt = prompts.build(req)
        stop = make_stop(tok, req.stop, req.prefix.rsplit("\n", 1)[-1])
        best: dict[str, dict] = {}
        for _ in range(rounds):
            runs = {"llamacpp-ar": run_llamacpp_ar(backend, prompt, max_tokens, eos, stop),
                    **{name: _engine_run(e, req) for name, e in engines.items()},
                    "llamacpp-pld": run_llamacpp_pld(pld, prompt, max_tokens, eos, stop)}
            for m, r in runs.items():
                if m not in best or r["decode_ms"] < best[m]["decode_ms"]:
                    best[m] = r
        ref = best["llamacpp-ar"]["tokens"]
        row = {"task": task.task_id, "prompt_tokens": len(prompt), "tokens": len(ref),
               "load": open("/proc/loadavg").read().split()[0]}
        for m, r in best.items():
            row[m] = {"decode_ms": round(r["decode_ms"], 1), "prefill_ms": round(r["prefill_ms"], 1),
                      "identical": r["tokens"] == ref, **({"steps": r["steps"]} if "steps" in r else {})}
            if r["tokens"] != ref:                    # a divergence must start at a near-tie
                j = next((i for i, (a, b) in enumerate(zip(r["tokens"], ref)) if a != b), min(len(ref), len(r["tokens"])))
                row[m]["first_diff"], row[m]["top2_gap"] = j, round(top2_gap(backend, prompt + ref[:j]), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _engine_run(engine, req) -> dict:
    res = engine.complete(req)
    return {"tokens": res.tokens, "prefill_ms": res.stats["prefill_ms"],
            "decode_ms": res.stats["decode_ms"], "steps": res.stats["steps"]}


def top2_gap(backend: LlamaCppBackend, tokens: list[int]) -> float:
    """Gap between the two largest logits after `tokens` (one fresh prefill)."""
    logits = backend.next_logits(tokens)
    top = np.partition(logits, -2)[-2:]
    return float(top[1] - top[0])


def summarize(rows: list[dict]) -> str:
    methods = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    total = {m: sum(r[m]["decode_ms"] for r in rows) for m in methods}
    ident = {m: sum(r[m]["identical"] for r in rows) for m in total}
    return "\n".join(f"{m:>20}: decode {total[m] / 1000:7.2f} s  speedup vs ar {total['llamacpp-ar'] / total[m]:5.2f}x"
                     f"  identical {ident[m]}/{len(rows)}" for m in total)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="llama.cpp: plain greedy vs codeswift vs prompt lookup")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--tasks", default="../shared/bench/repo-dev")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--kinds", default="", help="comma list, e.g. function")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--context-prior", type=float, default=None, help="override the 40%% prior")
    a = ap.parse_args()
    kinds = set(a.kinds.split(",")) if a.kinds else None
    print(summarize(compare(a.model, a.tasks, a.limit, a.max_tokens, a.rounds, a.threads, kinds,
                            a.context_prior)))
