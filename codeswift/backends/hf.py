"""transformers backend: stock HF causal LMs, tree attention via a 4D mask + position ids."""
from __future__ import annotations

import copy
import time
from contextlib import contextmanager

import numpy as np
import torch
from transformers import DynamicCache

from ..errors import BadInputError
from ..kvreuse import KVStore
from .base import WarmPacer


def _cache_nbytes(cache: DynamicCache) -> int:
    return sum(l.keys.numel() * l.keys.element_size() * 2 for l in cache.layers
               if getattr(l, "keys", None) is not None and l.keys.numel())


def _cache_len(cache: DynamicCache) -> int:
    return cache.get_seq_length()


def crop_cache(cache: DynamicCache, length: int) -> None:
    """Keep KV rows 0..length-1 in every layer."""
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, :length]
        layer.values = layer.values[:, :, :length]


def select_cache(cache: DynamicCache, keep: torch.Tensor) -> None:
    """Keep only KV rows `keep` (sorted positions) in every layer: compaction to the accepted path."""
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(2, keep)
        layer.values = layer.values.index_select(2, keep)


class HFBackend:
    """Verifier over a transformers model. One sequence at a time (batch 1)."""

    name = "transformers"

    def __init__(self, model, kv_store_bytes: int = 1 << 30, prefill_chunk: int = 2048):
        self.model = model.eval()
        self.device = str(model.device)
        self.dtype = str(model.dtype).replace("torch.", "")
        self.prefill_chunk = prefill_chunk
        self.store = KVStore(kv_store_bytes, clone=copy.deepcopy)
        self.cache: DynamicCache | None = None
        self._min = torch.finfo(model.dtype).min
        self._skip = None                  # LayerSkipModel, built on first use (self-drafting)

    # -- stages -------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(self, tokens: list[int], key: str | None = None, logits: bool = True) -> tuple[int, int]:
        ids = np.asarray(tokens, np.int64)
        if logits and len(ids) == 0:
            raise BadInputError("empty prompt")
        taken = self.store.take(key, ids) if len(ids) else None
        reused = 0
        if taken is not None:
            self.cache, reused = taken
            if logits:
                reused = min(reused, len(ids) - 1)   # need >= 1 new token to get logits
            crop_cache(self.cache, reused)
        else:
            self.cache = DynamicCache(config=self.model.config)
        last = None
        for start in range(reused, len(ids), self.prefill_chunk):
            chunk = torch.as_tensor(ids[start:start + self.prefill_chunk], device=self.model.device)
            out = self.model(input_ids=chunk[None], past_key_values=self.cache, use_cache=True,
                             logits_to_keep=1)
            last = out.logits[0, -1]                 # [V]
        return (int(last.argmax()) if logits else -1), reused

    @torch.inference_mode()
    def warm(self, tokens: list[int], key: str, is_cancelled=None, chunk: int = 128) -> int:
        """Prefill `tokens` into the store under `key` without generating (editor idle time).

        Works in chunks and stops early when `is_cancelled()` turns true; whatever was computed
        is kept. Returns the number of tokens whose KV is now stored.
        """
        ids = np.asarray(tokens, np.int64)
        taken = self.store.take(key, ids)
        cache, done = taken if taken is not None else (DynamicCache(config=self.model.config), 0)
        crop_cache(cache, done) if taken is not None else None
        pacer = WarmPacer.of(chunk)
        while done < len(ids) and not (is_cancelled and is_cancelled()):
            part = torch.as_tensor(ids[done:done + pacer.size], device=self.model.device)
            t0 = time.perf_counter()
            self.model(input_ids=part[None], past_key_values=cache, use_cache=True, logits_to_keep=1)
            if part.device.type == "cuda":
                torch.cuda.synchronize(part.device)       # time the pass, not its launch
            pacer.took(len(part), time.perf_counter() - t0)
            done += len(part)
        if done:
            self.store.put(key, ids[:done], cache, _cache_nbytes(cache))
        return done

    @torch.inference_mode()
    def verify(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> np.ndarray:
        return self._forward_tree(tokens, parents, depth).argmax(-1).cpu().numpy()

    def _forward_tree(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> torch.Tensor:
        """Append the tree to the KV cache in one forward pass; logits [n, V] per node."""
        past = _cache_len(self.cache)
        n = len(tokens)
        dev = self.model.device
        ids = torch.as_tensor(tokens, device=dev)[None]                        # [1, n]
        pos = torch.as_tensor(past + depth, device=dev)[None]                  # [1, n]
        kwargs = dict(input_ids=ids, position_ids=pos, past_key_values=self.cache, use_cache=True)
        if n > 1 and not _is_chain(parents):
            kwargs["attention_mask"] = self._tree_mask(parents, past)
        return self.model(**kwargs).logits[0]                                  # [n, V]

    @torch.inference_mode()
    def verify_logits(self, tokens: np.ndarray, parents: np.ndarray, depth: np.ndarray) -> torch.Tensor:
        """Like verify() but returns the float logits [n, V] (for sampling mode)."""
        return self._forward_tree(tokens, parents, depth).float().cpu()

    def commit(self, keep: np.ndarray | int) -> None:
        if isinstance(keep, (int, np.integer)):
            crop_cache(self.cache, int(keep))
        else:
            select_cache(self.cache, torch.as_tensor(keep, device=self.model.device))

    def finish(self, tokens: list[int], key: str | None) -> None:
        if self.cache is None:
            return
        n = _cache_len(self.cache)
        if key is not None and n:
            self.store.put(key, np.asarray(tokens[:n], np.int64), self.cache, _cache_nbytes(self.cache))
        self.cache = None

    # -- self-drafting (layer skipping, see hf_skip.py) --------------------------------------
    def layer_skip_unavailable(self) -> str | None:
        """Why this model cannot draft with skipped layers, or None when it can."""
        from .hf_skip import unavailable_reason
        return unavailable_reason(self.model)

    @property
    def n_layers(self) -> int:
        return self._skipper().n_layers

    @contextmanager
    def draft_scope(self, keep: int | None = None, window: tuple[int, int] | None = None):
        """Scratch use of the KV for drafting: yields the position the draft continues at (the
        rows in the KV; `keep` if given: the later rows are hidden meanwhile).

        `window` = (sinks, recent): a compact KV for long contexts (TokenSwift's dynamic KV, in
        TriForce's style): the draft attends only to the first `sinks` and the last `recent`
        positions, gathered per layer (positions keep their rotary phase, so distances stay
        true); verification still sees all of it. On exit every layer holds the very tensors it
        held before, whatever the draft appended (DynamicLayer.update concatenates into new
        tensors and never writes into the old ones), so verification sees the KV untouched."""
        saved = [(layer.keys, layer.values) for layer in self.cache.layers]
        try:
            if keep is not None:
                crop_cache(self.cache, keep)
            past = _cache_len(self.cache)
            if window is not None and past > window[0] + window[1]:
                idx = torch.cat([torch.arange(window[0]), torch.arange(past - window[1], past)]).to(self.model.device)
                for layer in self.cache.layers:
                    if getattr(layer, "keys", None) is not None and layer.keys.numel():
                        layer.keys = layer.keys.index_select(-2, idx)
                        layer.values = layer.values.index_select(-2, idx)
            yield past
        finally:
            for layer, (k, v) in zip(self.cache.layers, saved):
                layer.keys, layer.values = k, v

    def skip_forward(self, tokens, past: int, skip: frozenset[int], last_only: bool = False) -> torch.Tensor:
        """Inside `draft_scope`: `tokens` (a chain at positions past..) through the layers not in
        `skip`, appending to their KV (which may hold fewer rows than `past`: a compact window);
        logits [q, V] (or [1, V] with `last_only`)."""
        return self._skipper().forward(torch.as_tensor(tokens), past, self.cache, skip, last_only,
                                       rows=_cache_len(self.cache))

    def _skipper(self):
        if self._skip is None:
            from .hf_skip import LayerSkipModel
            self._skip = LayerSkipModel(self.model)
        return self._skip

    # -- helpers ------------------------------------------------------------------------
    def _tree_mask(self, parents: np.ndarray, past: int) -> torch.Tensor:
        """Additive mask [1, 1, n, past + n]: every node sees the past and its own ancestors."""
        from ..tree import ancestor_mask
        n = len(parents)
        allowed = np.ones((n, past + n), dtype=bool)
        allowed[:, past:] = ancestor_mask(parents)
        mask = torch.full((n, past + n), self._min, dtype=self.model.dtype)
        mask[torch.as_tensor(allowed)] = 0.0
        return mask.to(self.model.device)[None, None]


def _is_chain(parents: np.ndarray) -> bool:
    return bool(np.all(parents[1:] == np.arange(len(parents) - 1)))
