"""The llama.cpp side of `codeswift bench`: baselines llamacpp-ar (plain greedy) and
llamacpp-pld (llama-cpp-python's prompt lookup), and `LlamaCppSide`, the GGUF, backends and
llama-server peers of one run.

Both return {"tokens", "prefill_ms", "decode_ms"} with tokens cut by `loop.finalize`, the same
rule codeswift's own loop uses, so outputs compare token for token.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backends.llamacpp import (LlamaCppBackend, import_llama_cpp, load_gguf_tokenizer, require_usable,
                                 resolve_gguf)
from ..loop import StopCheck, finalize, stopped
from ..types import CompletionRequest
from .server import DEFAULT_DRAFT, ServerPeers, is_server


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
        while not stopped(out, max_new, eos_ids, stop):
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
    lc = import_llama_cpp()
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
            if stopped(out, max_new, eos_ids, stop):
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


class LlamaCppSide:
    """The llama.cpp side of a run: one GGUF, a backend per method (own KV, so no method
    inherits another's prompt cache), llama-cpp-python's prompt-lookup `Llama` and the
    llama-server peers."""

    def __init__(self, model: str, methods: list[str], threads: int | None = None,
                 server_draft: int = DEFAULT_DRAFT, server_lookup: int | None = 3):
        self.gguf = resolve_gguf(model)
        require_usable(self.gguf)                # a crashing build must not take the run down
        self.tokenizer = load_gguf_tokenizer(model, self.gguf)
        make = lambda: LlamaCppBackend(self.gguf, n_ctx=4096, n_threads=threads)   # noqa: E731
        self.ar = make() if "llamacpp-ar" in methods else None
        self.backends = {m: make() for m in methods if m.startswith("codeswift-llamacpp")}
        self.pld = make_pld_llama(self.gguf, n_threads=threads) if "llamacpp-pld" in methods else None
        self.model_id = f"llamacpp:{self.gguf.resolve()}"
        self.servers = ServerPeers(self.gguf, methods, threads, server_draft, lookup=server_lookup,
                                   n_ctx=4096) if any(is_server(m) for m in methods) else None

    def run_baseline(self, method: str, prompt: list[int], req: CompletionRequest, eos_ids: set[int],
                     stop: StopCheck | None, session: bool) -> dict:
        """llamacpp-ar or llamacpp-pld for `req`."""
        # In a session both reuse their prompt KV, as llama-server's cache_prompt does.
        r = (run_llamacpp_ar(self.ar, prompt, req.max_tokens, eos_ids, stop, key=req.doc_id if session else None)
             if method == "llamacpp-ar" else
             run_llamacpp_pld(self.pld, prompt, req.max_tokens, eos_ids, stop, reuse=session))
        return {**r, "steps": None, "per_source": {}}

    def reset(self) -> None:
        """Between tasks: no prompt state of the baselines or servers carries over."""
        if self.ar:
            self.ar.store.clear()
        if self.servers:
            self.servers.reset()

    def close(self) -> None:
        if self.servers:
            self.servers.close()
