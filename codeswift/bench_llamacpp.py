"""llama.cpp baselines for `codeswift bench` (methods llamacpp-ar, llamacpp-pld): plain greedy and
llama-cpp-python's prompt lookup.

Both return {"tokens", "prefill_ms", "decode_ms"} with tokens cut by `loop.finalize`, the same
rule codeswift's own loop uses, so outputs compare token for token.
"""
from __future__ import annotations

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


def make_pld_llama(model_path: str | Path, n_ctx: int = 4096, num_pred_tokens: int = 2,
                   max_ngram_size: int = 2, n_threads: int | None = None):
    """A high-level `Llama` with llama-cpp-python's `LlamaPromptLookupDecoding` draft model.

    num_pred_tokens=2: llama-cpp-python's documentation recommends 2 for CPU-only machines
    (10, its default, for GPUs); its CPU build is the one this baseline runs on.

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


def top2_gap(backend: LlamaCppBackend, tokens: list[int]) -> float:
    """Gap between the two largest logits after `tokens` (one fresh prefill)."""
    logits = backend.next_logits(tokens)
    top = np.partition(logits, -2)[-2:]
    return float(top[1] - top[0])
