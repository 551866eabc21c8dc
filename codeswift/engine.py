"""The engine: request -> prompt -> speculative loop -> result. Knows nothing of editors.

One engine owns one model. Completions are serialised (one KV cache, one sequence at a
time); the prompt KV of each document survives between completions (see kvreuse.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .budget import CostCurve, cache_path, flat_curve, load_or_measure
from .drafting import DraftConfig, Drafter
from .errors import BadInputError, CodeswiftError
from .loop import Sampler, finalize, generate
from .penalty import Penalty
from .prompt import PromptBudget, PromptBuilder, drop_typed
from .sources import CONTEXT, CORPUS, PREF, REPO, SELF, ContextSource, DraftSource
from .ending import cut_text, make_stop
from .timing import TimingPolicy
from .backends.base import Backend, WarmPacer
from .types import MAX_TOKENS, CompletionRequest, CompletionResult, EngineInfo

if TYPE_CHECKING:
    from .self_draft import SelfDraftConfig

# SELF is on by default: the budget decides at run time whether a self-draft pays on this
# device (on a steep cost curve it never drafts), and it exists only on transformers.
ALL_SOURCES = (CONTEXT, PREF, REPO, CORPUS, SELF)


@dataclass
class EngineConfig:
    """Everything that configures an engine; parsed once by the CLI, LSP or HTTP layer."""
    model: str = "qwen2.5-coder-0.5b"
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "auto"                     # auto | transformers | llamacpp
    max_tokens: int = 64
    sources: tuple[str, ...] = ALL_SOURCES
    tree: bool = True                         # False: single-chain drafts (ablation)
    timing: bool = True                       # retrieval-timing policy on/off (ablation)
    kv_reuse: bool = True
    kv_cache_mb: int = 1024
    measure_cost: bool = True                 # measure the forward-cost curve (cached on disk)
    persist_stats: bool = True                # keep learned draft acceptance on disk across sessions
    repo_root: str | None = None              # repository to index for drafts and snippets
    corpus_dir: str | None = None             # general corpus folder (`codeswift corpus build`), or "auto":
                                              # the stdlib/site-packages corpus if built (std_corpus.py)
    prompt: PromptBudget | None = None
    heal_whitespace: bool = True              # trailing spaces/tabs at the cursor: the model writes them
    heal_word: bool = True                    # a partial word at the cursor: its last token is re-chosen
                                              # by the model, starting with the typed text (prompt.py)
    draft: DraftConfig = field(default_factory=DraftConfig)
    self_draft: SelfDraftConfig | None = None  # the `self` source (None: SelfDraftConfig())


# Warm-up passes aim at this long: a completion arriving meanwhile waits about one pass (work it
# reuses when it asks for the same prompt); bigger passes prefill faster per token.
WARM_TARGET_MS = 300.0


class Engine:
    """Completions of one model behind one Backend (see backends/base.py).

    Build it with `Engine.load(config)` (a known name, folder, .gguf or HF id), with
    `Engine.from_hf(model, tokenizer)` around a loaded transformers model, or with
    `Engine(backend, tokenizer)` around any other Backend.
    """

    def __init__(self, backend: Backend, tokenizer, config: EngineConfig | None = None, model_id: str = ""):
        self.cfg = config or EngineConfig()
        self.tokenizer = tokenizer
        self.backend = backend
        self.model_id = model_id or backend.name
        self.prompts = PromptBuilder(tokenizer, self.cfg.prompt or PromptBudget.for_device(self.backend.device),
                                     heal_whitespace=self.cfg.heal_whitespace, heal_word=self.cfg.heal_word)
        self.cost: CostCurve = (load_or_measure(self.backend, self.model_id, len(tokenizer))
                                if self.cfg.measure_cost else flat_curve())
        self.repo_index = None
        self.sources: list[DraftSource] = self._make_sources()
        # One drafter for the engine's lifetime: per-source acceptance is learned across completions.
        self.drafter = Drafter(self.sources, self.cost,
                               DraftConfig(**{**self.cfg.draft.__dict__, "tree": self.cfg.tree}),
                               TimingPolicy(enabled=self.cfg.timing))
        self._lock = threading.Lock()
        self._warm_pacer: WarmPacer | None = None
        self._token_texts: dict[int, str] = {}
        self._stats_path = (cache_path(self.model_id, self.backend.device, self.backend.dtype, "acceptance")
                            if self.cfg.persist_stats and self.cfg.measure_cost else None)
        self._stats_saved = time.monotonic()
        self._load_stats()
        freeze_heap()

    @classmethod
    def from_hf(cls, model, tokenizer, config: EngineConfig | None = None, model_id: str = "") -> "Engine":
        """An engine over a loaded transformers causal LM (any device and dtype)."""
        from .backends.hf import HFBackend
        config = config or EngineConfig()
        backend = HFBackend(model, kv_store_bytes=config.kv_cache_mb << 20)
        return cls(backend, tokenizer, config,
                   model_id=model_id or getattr(model.config, "_name_or_path", "") or "model")

    @property
    def info(self) -> EngineInfo:
        """What a status line shows: model, device, dtype, runtime."""
        return EngineInfo(model=self.model_id, device=self.backend.device, dtype=self.backend.dtype,
                          backend=self.backend.name)

    def close(self) -> None:
        """Keep what was learned (the model itself is freed with the engine)."""
        self.save_stats()

    # -- learned acceptance, kept across sessions ----------------------------------------
    def _load_stats(self) -> None:
        import json
        if self._stats_path is None:
            return
        try:
            self.drafter.import_stats(json.loads(self._stats_path.read_text()))
        except (OSError, ValueError, AttributeError):
            pass                                  # none yet, or unreadable: learn afresh

    def save_stats(self) -> None:
        """Write the drafter's learned acceptance (atomic; done every 30 s of use anyway)."""
        import json
        if self._stats_path is None:
            return
        self._stats_saved = time.monotonic()
        try:
            self._stats_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._stats_path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(self.drafter.export_stats()))
            tmp.replace(self._stats_path)
        except OSError:
            pass                                  # read-only cache: keep learning in memory

    @classmethod
    def load(cls, config: EngineConfig) -> "Engine":
        """Load the configured model (known name, folder, .gguf or HF id) and build the engine."""
        from .models import load_model, use_llamacpp
        if use_llamacpp(config.model, config.backend, config.device):
            from .backends.llamacpp import load_llamacpp_backend
            from .errors import RuntimeUnusableError
            try:
                backend, tok, model_id = load_llamacpp_backend(config)
                return cls(backend, tok, config, model_id=model_id)
            except RuntimeUnusableError as e:
                if config.backend == "llamacpp":
                    raise
                import sys
                print(f"codeswift: llama.cpp is unusable here ({e}); using transformers", file=sys.stderr)
        model, tok, path = load_model(config.model, config.device, config.dtype)
        return cls.from_hf(model, tok, config, model_id=path)

    # -- sources ------------------------------------------------------------------------
    def _make_sources(self) -> list[DraftSource]:
        wanted = set(self.cfg.sources)
        srcs: list[DraftSource] = []
        if CONTEXT in wanted:
            srcs.append(ContextSource())
        if PREF in wanted:
            srcs.append(self._pref_cache())
        if REPO in wanted and self.cfg.repo_root:
            from .retrieval_sources import RepoSource
            self.repo_index = self._open_repo(self.cfg.repo_root)
            srcs.append(RepoSource(self.repo_index))
        self.corpus = None
        if CORPUS in wanted and self.cfg.corpus_dir:
            from .retrieval_sources import CorpusSource
            self.corpus = self._open_corpus(self.cfg.corpus_dir)
            if self.corpus is not None:
                srcs.append(CorpusSource(self.corpus))
        if SELF in wanted:
            from .self_draft import SelfSource, unavailable_reason
            if unavailable_reason(self.backend) is None:     # llama.cpp: no layer-skip API
                srcs.append(SelfSource(self.backend, self.cost, self.model_id, self.cfg.self_draft,
                                       measure=self.cfg.measure_cost,
                                       persist=self.cfg.persist_stats and self.cfg.measure_cost))
        return srcs

    def _open_corpus(self, where: str):
        """The configured corpus; "auto": the automatic one if it was built, else None (it is
        built in the background by the servers, see std_corpus.py)."""
        if where == "auto":
            from .std_corpus import open_auto
            return open_auto(self.tokenizer)
        from datastore import storage
        from datastore.corpus import Corpus
        try:
            return Corpus.open(where, self.tokenizer)
        except (FileNotFoundError, storage.StaleIndex, storage.CorruptIndex) as e:
            raise CodeswiftError(f"corpus {where} is unusable ({type(e).__name__}: {e}); build it with "
                                 f"`codeswift corpus build SRC... --out {where}`") from None

    def attach_corpus(self, corpus) -> None:
        """Use (or stop using, with None) a general corpus as draft source, e.g. once the
        automatic corpus is built; completions in flight finish with the old one."""
        from .retrieval_sources import CorpusSource
        with self._lock:
            replaced = self.corpus is not None
            self.sources = [s for s in self.sources if s.name != CORPUS]
            self.corpus = corpus if CORPUS in self.cfg.sources else None
            if self.corpus is not None:
                self.sources.append(CorpusSource(self.corpus))
            self.drafter.sources = self.sources
        freeze_heap(replaced)

    def _pref_cache(self) -> DraftSource:
        from .pref_cache import Detokenizer, PrefCache
        tok = self.tokenizer
        return PrefCache(special_ids=getattr(tok, "all_special_ids", ()) or (),
                         text=Detokenizer(lambda ids: tok.decode(ids, skip_special_tokens=True),
                                          lambda s: tok.encode(s, add_special_tokens=False)))

    def _open_repo(self, root: str):
        from datastore.repo_index import RepoIndex
        return RepoIndex.open_or_build(root, self.tokenizer, progress=False)

    def attach_repo(self, root: str | None) -> None:
        """Use (or stop using, with None) a repository as draft source; incremental re-index.

        The index is built (or brought up to date) before the engine's lock is taken, so
        completions go on meanwhile, without repository drafts until it is attached."""
        from .retrieval_sources import RepoSource
        index = self._open_repo(root) if root and REPO in self.cfg.sources else None
        with self._lock:
            replaced = self.repo_index is not None
            self.sources = [s for s in self.sources if s.name != REPO]
            self.repo_index = index
            if index is not None:
                self.sources.append(RepoSource(index))
            self.drafter.sources = self.sources
        freeze_heap(replaced)

    def reset_caches(self) -> None:
        """Forget prompt KV caches and the preference cache (a cold start, for benchmarks).

        Per-source acceptance rates are kept: they calibrate the sources, not the content."""
        with self._lock:
            self.backend.store.clear()
            self.sources = [self._pref_cache() if s.name == PREF else s for s in self.sources]
            self.drafter.sources = self.sources

    def warm(self, req: CompletionRequest) -> int:
        """Prefill the prompt of `req` into the KV cache while the editor is idle.

        Returns the number of prompt tokens now cached. A real completion arriving meanwhile
        should cancel this through `req.is_cancelled` (checked between chunks).
        """
        validate_request(req)
        if not self.cfg.kv_reuse:
            return 0
        with self._lock:
            self.prompts.prepare()                # token healing's table, once, in idle time
            prompt = self.prompts.build(req)
            # The completion's last prompt token is recomputed anyway: cache all but it.
            if self._warm_pacer is None:
                self._warm_pacer = WarmPacer(self.warm_chunk(), WARM_TARGET_MS if self.cfg.measure_cost else None)
            return self.backend.warm(prompt[:-1], req.doc_id or req.path or "default", req.is_cancelled,
                                     chunk=self._warm_pacer)

    def opening_offset(self, text: str) -> int:
        """Where to warm a document just opened (the cursor is unknown; editors mostly start at the
        top): the end of its first lines that fit the prompt budget, the longest prefix that
        completions anywhere above it share up to their line."""
        tokens = offset = 0
        for line in text.splitlines(keepends=True):
            tokens += len(self.prompts.encode_lines(line))
            if tokens > self.prompts.budget.prefix:
                break
            offset += len(line)
        return offset

    def warm_chunk(self, target_ms: float = 150.0) -> int:
        """Tokens of the first warm-up forward pass: as many as take ~`target_ms` on this device
        by the measured cost curve (on a GPU the chunk is large, on 2 CPU cores a few dozen
        tokens); later passes are sized by their own measured time (WarmPacer, WARM_TARGET_MS),
        since a curve measured on a busy machine overstates the cost."""
        per_token = self.cost(self.cost.ks[-1]) / self.cost.ks[-1]
        return int(min(512, max(16, target_ms / max(per_token, 1e-3)))) if self.cfg.measure_cost else 128

    def _final_check(self, stop: str):
        """Tokens after which a completion emits nothing more: the stop tokens, and with
        stop="line" any token containing a newline (drafts are cut after them)."""
        eos = self.prompts.stop_ids
        if stop != "line":
            return lambda t: t in eos
        texts = self._token_texts

        def final(t: int) -> bool:
            if t in eos:
                return True
            text = texts.get(t)
            if text is None:
                text = texts[t] = self.tokenizer.decode([t])
            return "\n" in text
        return final

    def text_of(self, tokens: list[int], req: CompletionRequest) -> str:
        """The text to insert for generated `tokens`: cut by the stop rule (a no-op unless it
        fired), without the whitespace already typed at the cursor (see PromptBuilder.cursor_line)."""
        line_prefix, healed = self.prompts.cursor_line(req.prefix)
        text = cut_text(self.tokenizer.decode(tokens, skip_special_tokens=True), req.stop, line_prefix)
        return drop_typed(text, healed)

    def source(self, name: str) -> DraftSource | None:
        return next((s for s in self.sources if s.name == name), None)

    # -- completion ---------------------------------------------------------------------
    def complete(self, req: CompletionRequest) -> CompletionResult:
        """Greedy completion at the cursor; identical to plain greedy decoding of the model."""
        validate_request(req)
        with self._lock:
            t0 = time.perf_counter()
            prompt = self.prompts.build(req)
            line, healed = self.prompts.cursor_line(req.prefix)
            stop = make_stop(self.tokenizer, req.stop, line)
            drafter = self.drafter if req.speculative and self.sources else None
            key = (req.doc_id or req.path or "default") if self.cfg.kv_reuse else None
            sampler = Sampler(req.temperature, req.top_p, req.seed) if req.temperature > 0 else None
            penalty = Penalty(req.repetition_penalty, req.penalty_window)
            first = self.prompts.first_tokens(healed)
            stream = self._stream(req, healed) if req.on_text is not None else None
            out, reason, st = generate(
                self.backend, prompt, req.max_tokens, self.prompts.stop_ids, drafter=drafter,
                stop=stop, cache_key=key, is_cancelled=req.is_cancelled, sampler=sampler,
                on_step=stream and self._stream_step(stream, req, stop), penalty=penalty, first_tokens=first,
                ctx_info={"doc_id": req.doc_id, "path": req.path, "language": req.language,
                          "is_final": self._final_check(req.stop),
                          "prefix": req.prefix[:len(req.prefix) - len(healed)], "suffix": req.suffix})
            text = self.text_of(out, req)
            if stream is not None:
                stream.close(text)
            stats = st.to_json(len(out))
            stats["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            stats["temperature"] = req.temperature
            # Speedup over plain decoding from the measured cost curve: tokens per step times
            # cost(1 token) / cost(mean tree size). Not wall-clock: that needs `codeswift bench`.
            stats["est_speedup"] = (round(stats["accepted_per_step"] * self.cost(1) / self.cost(stats["mean_tree_nodes"]), 3)
                                    if st.steps and self.cfg.measure_cost else None)
            if self._stats_path is not None and time.monotonic() - self._stats_saved > 30:
                self.save_stats()
            return CompletionResult(text=text, tokens=out, finish_reason=reason, stats=stats)


    def _stream(self, req: CompletionRequest, healed: str):
        from .streaming import TextStream
        return TextStream(lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True),
                          req.on_text, req.stop, healed)

    def _stream_step(self, stream, req: CompletionRequest, stop):
        """The loop's OnStep for a stream: push the tokens that cannot be cut any more; once
        EOS, a stop rule or max_new ends the generation, `stream.close` sends the final text."""
        eos = self.prompts.stop_ids

        def on_step(gen: list[int]) -> bool:
            toks, why = finalize(gen, req.max_tokens, eos, stop)
            return why == "length" and len(toks) < req.max_tokens and stream.push(toks)
        return on_step


def freeze_heap(replaced: bool = False) -> None:
    """Take everything alive now out of the cyclic garbage collector's view (`gc.freeze`): the
    tokenizer, indexes and corpus are ~500k long-lived objects, and a full collection over them
    (198 ms measured) paused whichever completion it fell in. They are still freed by reference
    counting; `replaced` (an index or corpus was swapped out): collect once first, so cycles in
    what was frozen before do not outlive it."""
    import gc
    if replaced:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def validate_request(req: CompletionRequest) -> None:
    """Raise BadInputError for a request no backend can serve (before any work is done)."""
    if not isinstance(req.prefix, str) or not isinstance(req.suffix, str):
        raise BadInputError("prefix and suffix must be strings")
    if not isinstance(req.max_tokens, int) or req.max_tokens < 1 or req.max_tokens > MAX_TOKENS:
        raise BadInputError(f"max_tokens must be an integer in 1..{MAX_TOKENS}, got {req.max_tokens!r}")
    if not isinstance(req.repetition_penalty, (int, float)) or not 1 <= req.repetition_penalty <= 3:
        raise BadInputError(f"repetition_penalty must be in 1..3 (1: off), got {req.repetition_penalty!r}")
    if not isinstance(req.penalty_window, int) or not 0 <= req.penalty_window <= 1 << 16:
        raise BadInputError(f"penalty_window must be an integer in 0..65536 (0: all), got {req.penalty_window!r}")
    if not isinstance(req.temperature, (int, float)) or not 0 <= req.temperature <= 5:
        raise BadInputError(f"temperature must be in 0..5, got {req.temperature!r}")
    if not isinstance(req.top_p, (int, float)) or not 0 < req.top_p <= 1:
        raise BadInputError(f"top_p must be in (0, 1], got {req.top_p!r}")
    if req.stop not in ("none", "line", "block"):
        raise BadInputError(f"stop must be none, line or block, got {req.stop!r}")
