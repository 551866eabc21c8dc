"""`codeswift serve --engine vllm`: the service's front end on vLLM's async engine.

The service (app.py) keeps everything of its own: the three dialects, FIM prompts per model
family with repository snippets (codeswift.prompt), stop rules and post-processing
(codeswift.ending), auth, the guard, metrics and SSE. Instead of the one-at-a-time `Scheduler`
it gets `VllmScheduler`, which runs every admitted request at once on vLLM's `AsyncLLM`
(continuous batching, paged KV, prefix caching). Speculative decoding is vLLM's: `none`,
its `ngram` or `suffix`, or `codeswift` (codeswift's drafter as vLLM's proposer,
codeswift/vllm/proposer.py: own context, the request's repository, the preference cache).

vLLM is imported only here and only when `load` runs.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from codeswift.engine import validate_request
from codeswift.ending import cut_text, make_stop
from codeswift.errors import BadInputError, CancelledError, CodeswiftError
from codeswift.loop import finalize
from codeswift.prompt import PromptBudget, PromptBuilder, drop_typed
from codeswift.types import CompletionRequest, CompletionResult, EngineInfo

from .scheduler import QueueFull

log = logging.getLogger("codeswift.service")

SPEC_METHODS = ("none", "ngram", "suffix", "codeswift")
PROPOSER_CLASS = "codeswift.vllm.proposer.CodeswiftProposer"


@dataclass(frozen=True)
class VllmSettings:
    """What `codeswift serve --engine vllm` passes to vLLM."""
    model: str                         # a model folder or HF id (resolved by codeswift.models)
    dtype: str = "auto"
    spec: str = "codeswift"
    spec_tokens: int = 4
    max_model_len: int = 8192
    max_num_seqs: int = 16
    repo_root: str | None = None       # default repository for requests that name none
    kv_cache_gib: float = 4.0          # CPU only (VLLM_CPU_KVCACHE_SPACE)
    enforce_eager: bool = False        # no torch.compile: starts sooner (tests), may decode slower


def speculative_config(spec: str, k: int) -> dict[str, Any] | None:
    """vLLM's `speculative_config` for a `--vllm-spec` choice."""
    if spec not in SPEC_METHODS:
        raise CodeswiftError(f"--vllm-spec must be one of {', '.join(SPEC_METHODS)}, got {spec!r}")
    if not 1 <= k <= 64:
        raise CodeswiftError(f"--vllm-spec-tokens must be in 1..64, got {k}")
    if spec == "none":
        return None
    if spec == "ngram":
        return {"method": "ngram", "num_speculative_tokens": k, "prompt_lookup_min": 1, "prompt_lookup_max": 8}
    if spec == "suffix":
        return {"method": "suffix", "num_speculative_tokens": k}
    return {"method": "custom_class", "model": PROPOSER_CLASS, "num_speculative_tokens": k}


def engine_kwargs(s: VllmSettings) -> dict[str, Any]:
    """Keyword arguments of vLLM's (Async)EngineArgs for these settings."""
    spec = speculative_config(s.spec, s.spec_tokens)
    kw: dict[str, Any] = dict(model=s.model, tokenizer=s.model, dtype=s.dtype, max_model_len=s.max_model_len,
                              max_num_seqs=s.max_num_seqs, enable_prefix_caching=True,
                              disable_log_stats=True, enforce_eager=s.enforce_eager)
    if spec is not None:
        kw["speculative_config"] = spec
        kw["per_request_spec_decode_metrics"] = "summary"
    return kw


def prepare_environment(s: VllmSettings) -> None:
    """Environment vLLM reads at start (before it is imported)."""
    if s.kv_cache_gib > 0:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(s.kv_cache_gib))))


class VllmEngine:
    """What service/app.py needs from an engine (`info`, `tokenizer`, `scheduler`), over vLLM."""

    def __init__(self, llm, tokenizer, settings: VllmSettings, model_id: str, device: str = "cpu",
                 dtype: str = ""):
        self.llm, self.tokenizer, self.settings = llm, tokenizer, settings
        self.model_id = model_id
        self.repo_index = None
        budget = PromptBudget.for_device("cuda" if device == "cuda" else "cpu")
        # No token healing: its first-token rule needs a per-request logits rule vLLM v1 lacks.
        self.prompts = PromptBuilder(tokenizer, budget, heal_word=False)
        self.info = EngineInfo(model=model_id, device=device, dtype=dtype,
                               backend=f"vllm ({settings.spec}" + (f", {settings.spec_tokens} tokens)"
                                                                   if settings.spec != "none" else ")"))
        self._ids = itertools.count(1)

    @classmethod
    async def load(cls, settings: VllmSettings) -> "VllmEngine":
        """Start vLLM's engine (in its own processes) for `settings`; call inside the event loop
        that will serve (AsyncLLM's output handler runs on it)."""
        from codeswift.models import resolve
        path = resolve(settings.model)
        limit = model_context(path)
        settings = VllmSettings(**{**settings.__dict__, "model": path,
                                   "max_model_len": min(settings.max_model_len, limit or settings.max_model_len)})
        prepare_environment(settings)
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as e:
            raise CodeswiftError(f"vLLM is not importable in {sys.executable} ({e}); run `codeswift setup vllm` "
                                 "or give --vllm-python") from e
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(path)
        try:
            llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs(settings)))
        except Exception as e:                         # vLLM's processes logged the details above
            raise CodeswiftError(f"vLLM could not start {path}: {start_error(e)}") from e
        cfg = llm.vllm_config.model_config
        device = "cuda" if _has_cuda() else "cpu"
        return cls(llm, tokenizer, settings, path, device=device, dtype=str(cfg.dtype).replace("torch.", ""))

    def scheduler(self, queue_size: int) -> "VllmScheduler":
        return VllmScheduler(self, queue_size)

    def close(self) -> None:
        try:
            self.llm.shutdown()
        except Exception:                              # already gone
            log.debug("vLLM shutdown failed", exc_info=True)

    # -- one request --------------------------------------------------------------------
    def sampling_params(self, req: CompletionRequest, repo_root: str | None, prefix: str):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from codeswift.vllm.chains import RequestArgs
        extra = RequestArgs(repo=repo_root, doc_id=req.doc_id or req.path or None, path=req.path,
                            language=req.language, prefix=prefix, suffix=req.suffix,
                            max_tokens=req.max_tokens).to_extra()
        return SamplingParams(
            n=1, temperature=float(req.temperature), top_p=float(req.top_p), seed=req.seed,
            max_tokens=req.max_tokens, stop_token_ids=sorted(self.prompts.stop_ids),
            skip_special_tokens=True, detokenize=False, output_kind=RequestOutputKind.DELTA,
            extra_args=extra or None)

    def check(self, req: CompletionRequest) -> None:
        """BadInputError for what this engine cannot do (before anything is queued)."""
        validate_request(req)
        if req.repetition_penalty != 1.0:
            raise BadInputError("repetition_penalty is not supported with --engine vllm (codeswift's "
                                "contextual penalty runs on the codeswift engine only)")

    async def run(self, req: CompletionRequest, cancelled: threading.Event) -> CompletionResult:
        t0 = time.perf_counter()
        prompt = await asyncio.to_thread(self.prompts.build, req)
        if len(prompt) + req.max_tokens > self.settings.max_model_len:
            raise BadInputError(f"prompt ({len(prompt)} tokens) + max_tokens ({req.max_tokens}) exceed the "
                                f"served context ({self.settings.max_model_len} tokens, --vllm-max-model-len)")
        line, healed = self.prompts.cursor_line(req.prefix)
        stop = make_stop(self.tokenizer, req.stop, line)
        eos = self.prompts.stop_ids
        repo = getattr(req, "repo_root", None) or self.settings.repo_root
        sp = self.sampling_params(req, repo, req.prefix[:len(req.prefix) - len(healed)])
        stream = None
        if req.on_text is not None:
            from codeswift.streaming import TextStream
            stream = TextStream(lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True),
                                req.on_text, req.stop, healed)
        rid = f"codeswift-{next(self._ids)}"
        gen: list[int] = []
        spec: dict[str, Any] | None = None
        first_ms = None
        ended_by_client = False
        agen = self.llm.generate({"prompt_token_ids": prompt}, sp, rid)
        try:
            async for out in agen:
                if cancelled.is_set():
                    raise CancelledError("cancelled")
                o = out.outputs[0]
                gen.extend(int(t) for t in o.token_ids)
                if first_ms is None and gen:
                    first_ms = (time.perf_counter() - t0) * 1000
                if o.spec_decode_metrics is not None:
                    spec = o.spec_decode_metrics.to_dict()
                toks, why = finalize(gen, req.max_tokens, eos, stop)
                if out.finished:
                    break
                if why != "length" or len(toks) >= req.max_tokens:
                    break                              # a stop rule fired: nothing more is emitted
                if stream is not None and stream.push(toks):
                    ended_by_client = True
                    break
        except CodeswiftError:
            raise
        except Exception as e:
            if type(e).__name__ in ("VLLMValidationError", "ValueError"):
                raise BadInputError(str(e).splitlines()[0]) from e
            raise
        finally:
            await agen.aclose()                        # aborts the request in vLLM if still running
        toks, reason = finalize(gen, req.max_tokens, eos, stop)
        if ended_by_client:
            reason = "stop"
        text = drop_typed(cut_text(self.tokenizer.decode(toks, skip_special_tokens=True), req.stop, line), healed)
        if stream is not None:
            stream.close(text)
        return CompletionResult(text=text, tokens=toks, finish_reason=reason,
                                stats=self._stats(len(prompt), len(toks), spec, t0, first_ms, req))

    def _stats(self, prompt_len: int, n: int, spec: dict | None, t0: float, first_ms: float | None,
               req: CompletionRequest) -> dict[str, Any]:
        total = (time.perf_counter() - t0) * 1000
        st: dict[str, Any] = {"engine": "vllm", "spec": self.settings.spec, "prompt_tokens": prompt_len,
                              "tokens": n, "total_ms": round(total, 2),
                              "first_token_ms": round(first_ms, 2) if first_ms is not None else None,
                              "temperature": req.temperature}
        if spec is not None:
            steps = int(spec.get("num_spec_steps", 0))
            st.update(steps=steps, drafted_tokens=int(spec.get("num_draft_tokens", 0)),
                      accepted_tokens=int(spec.get("num_accepted_draft_tokens", 0)),
                      accepted_per_step=round(float(spec.get("mean_acceptance_length", 1.0)), 3),
                      draft_acceptance_rate=round(float(spec.get("draft_acceptance_rate", 0.0)), 3))
        return st


class VllmScheduler:
    """The `Scheduler` interface (complete, depth, close) with every admitted request running.

    vLLM batches up to `max_num_seqs` sequences; requests beyond that wait inside vLLM. At most
    `max_num_seqs + queue_size` are admitted; more get QueueFull (HTTP 429)."""

    def __init__(self, engine: VllmEngine, queue_size: int = 16):
        self.engine = engine
        self.capacity = engine.settings.max_num_seqs + queue_size
        self._active: set[asyncio.Task] = set()
        self._closed = False

    def depth(self) -> tuple[int, int]:
        n = len(self._active)
        m = self.engine.settings.max_num_seqs
        return min(n, m), max(n - m, 0)

    async def complete(self, req: CompletionRequest, cancelled: threading.Event) -> CompletionResult:
        if self._closed:
            raise CancelledError("the server is shutting down")
        self.engine.check(req)
        if len(self._active) >= self.capacity:
            raise QueueFull(f"the completion queue is full ({self.capacity} admitted); retry later")
        req.is_cancelled = cancelled.is_set
        task = asyncio.current_task()
        self._active.add(task)
        try:
            return await self.engine.run(req, cancelled)
        finally:
            self._active.discard(task)

    def close(self) -> None:
        self._closed = True
        for t in list(self._active):
            t.cancel()
        self.engine.close()


def start_error(e: BaseException) -> str:
    """One line for why vLLM did not start (pydantic's config errors put it on a later line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    line = next((ln for ln in lines if ln.startswith("Value error,")), lines[0] if lines else type(e).__name__)
    return f"{type(e).__name__}: {line.removeprefix('Value error, ')}"[:400]


def model_context(path: str) -> int | None:
    """The context length a model folder's config.json declares (None: unknown, e.g. a hub id)."""
    import json
    try:
        cfg = json.loads((__import__("pathlib").Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    n = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    return int(n) if isinstance(n, (int, float)) and n > 0 else None


def _has_cuda() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:
        return False
