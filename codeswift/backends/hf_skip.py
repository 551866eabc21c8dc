"""Layer-skipping forward over a stock transformers model (self-speculation, SWIFT).

The draft model is the target model with some decoder layers left out: the embedding, the kept
layers (the model's own modules, called one after another), the final norm and the head. No
forked model file: each supported layout says where its stock modules are and how one layer is
called. A kept layer appends to its own KV in the backend's DynamicCache; a skipped layer's KV is
never touched. Callers undo the appends (`HFBackend.draft_scope`).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

# model_type -> layout. Llama-style decoders share modeling code (model.model.layers, norm,
# rotary_emb, embed_tokens); GPT-2 keeps its blocks in transformer.h with learned positions.
DECODER_TYPES = ("llama", "qwen2", "mistral")
GPT2_TYPES = ("gpt2",)
ATTENTION = ("sdpa", "eager")                 # implementations that take an additive 4D mask


class LayerSkipUnavailable(Exception):
    """This model cannot be driven layer by layer here (its architecture or attention)."""


def unavailable_reason(model) -> str | None:
    """Why `model` cannot draft with skipped layers, or None when it can."""
    cfg = model.config
    if cfg.model_type not in DECODER_TYPES + GPT2_TYPES:
        return f"architecture {cfg.model_type!r} has no layer-skip layout (known: " \
               f"{', '.join(DECODER_TYPES + GPT2_TYPES)})"
    if getattr(cfg, "_attn_implementation", "sdpa") not in ATTENTION:
        return f"attention {cfg._attn_implementation!r} (layer skipping drives sdpa or eager)"
    types = getattr(cfg, "layer_types", None) or ()
    if any(t != "full_attention" for t in types):
        return "sliding-window layers (the draft mask is full causal attention)"
    return None


@dataclass
class _Layout:
    embed: torch.nn.Module
    layers: torch.nn.ModuleList
    norm: torch.nn.Module
    head: torch.nn.Module
    rotary: torch.nn.Module | None = None     # llama-style: (cos, sin) per position
    wpe: torch.nn.Module | None = None        # gpt-2: learned position embedding
    drop: torch.nn.Module | None = None


def _layout(model) -> _Layout:
    why = unavailable_reason(model)
    if why is not None:
        raise LayerSkipUnavailable(why)
    if model.config.model_type in GPT2_TYPES:
        t = model.transformer
        return _Layout(t.wte, t.h, t.ln_f, model.lm_head, wpe=t.wpe, drop=t.drop)
    m = model.model
    return _Layout(m.embed_tokens, m.layers, m.norm, model.lm_head, rotary=m.rotary_emb)


class LayerSkipModel:
    """Forward passes of `model` with a set of decoder layers skipped (their input passes through)."""

    def __init__(self, model):
        self.model = model
        self._l = _layout(model)
        self.n_layers = len(self._l.layers)
        self._gpt2 = self._l.wpe is not None
        self._min = torch.finfo(model.dtype).min
        # transformers 5 renamed a layer's `past_key_values` to `cache` (the old name warns)
        params = inspect.signature(type(self._l.layers[0]).forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, past: int, cache, skip: frozenset[int],
                last_only: bool = False, rows: int | None = None) -> torch.Tensor:
        """Run `tokens` [q] (a chain at positions past..past+q-1) through the kept layers,
        appending to their KV in `cache`, which holds `rows` entries (default `past`; fewer for a
        compact window); returns logits [q, V] (or [1, V] with `last_only`)."""
        l, dev = self._l, self.model.device
        q = len(tokens)
        ids = tokens.to(dev)[None]                                            # [1, q]
        pos = torch.arange(past, past + q, device=dev)[None]                  # [1, q]
        h = l.embed(ids)                                                      # [1, q, H]
        rows = past if rows is None else rows
        mask = self._causal_mask(rows, q) if q > 1 else None                  # q = 1 sees all it holds
        if self._gpt2:
            h = l.drop(h + l.wpe(pos))
            for i, block in enumerate(l.layers):
                if i not in skip:
                    h = block(h, attention_mask=mask, use_cache=True, position_ids=pos,
                              **{self._cache_kw: cache})
        else:
            pe = l.rotary(h, pos)
            for i, layer in enumerate(l.layers):
                if i not in skip:
                    h = layer(h, attention_mask=mask, position_ids=pos, use_cache=True,
                              position_embeddings=pe, **{self._cache_kw: cache})
        h = l.norm(h[:, -1:] if last_only else h)
        return l.head(h)[0]                                                   # [q or 1, V]

    def _causal_mask(self, past: int, q: int) -> torch.Tensor:
        """Additive mask [1, 1, q, past + q]: token i sees the past and tokens 0..i."""
        allowed = torch.ones(q, past + q, dtype=torch.bool).tril(past)
        mask = torch.full((q, past + q), self._min, dtype=self.model.dtype)
        mask[allowed] = 0.0
        return mask.to(self.model.device)[None, None]
