"""Draft budget from a measured cost curve: how long a forward pass of k tokens takes here.

The number of tree nodes worth verifying depends on the device: on 2 CPU cores 16 tokens cost
~1.5x one token, on a GPU almost nothing. The curve is measured once per (model, device, dtype)
and cached on disk; the tree size then maximises expected accepted tokens per second.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Dense where it matters: llama.cpp's CPU kernels work in groups of 4 (repack) or 8 tokens, so a
# batch of 3 can cost more than one of 4 (measured: Q4_0 24 ms for 3, 20 ms for 4 on AVX512).
KS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)

log = logging.getLogger("codeswift.budget")


@dataclass
class CostCurve:
    ks: tuple[int, ...]
    ms: tuple[float, ...]

    def __post_init__(self):
        # batch_for and cost for every whole tree size up to the largest measured one, once:
        # the drafter asks for all of them at every step.
        sizes = range(1, int(max(self.ks)) + 1)
        self._batch = np.asarray([self._batch_for(k) for k in sizes], np.int64)
        self._cost = np.asarray([self._raw(b) for b in self._batch])

    def __call__(self, k: int) -> float:
        """Cost of verifying k nodes when the tree may be padded to a cheaper, larger batch."""
        if float(k).is_integer() and 1 <= k <= len(self._cost):
            return float(self._cost[int(k) - 1])
        return self._raw(self._batch_for(k))

    def _raw(self, k: int) -> float:
        return float(np.interp(k, self.ks, self.ms))

    def batch_for(self, k: int) -> int:
        """The batch size to run k nodes in: the cheapest measured size >= k (k itself unless a
        bigger batch costs less, as 4 does next to 3 on kernels that work in groups of 4)."""
        if float(k).is_integer() and 1 <= k <= len(self._batch):
            return int(self._batch[int(k) - 1])
        return self._batch_for(k)

    def _batch_for(self, k: int) -> int:
        best, best_ms = k, self._raw(k)
        for m, ms in zip(self.ks, self.ms):
            if m > k and ms < best_ms:
                best, best_ms = m, ms
        return best

    def best_size(self, probs: np.ndarray, max_nodes: int) -> int:
        """n maximising sum(probs[:n]) / cost(n); `probs` sorted descending, probs[0] = root = 1."""
        n_max = min(len(probs), max_nodes)
        expected = np.cumsum(probs[:n_max])                 # expected tokens emitted per step
        costs = (self._cost[:n_max] if n_max <= len(self._cost)
                 else np.asarray([self(n) for n in range(1, n_max + 1)]))
        return int(np.argmax(expected / costs)) + 1

    def to_json(self) -> dict:
        return {"ks": list(self.ks), "ms": list(self.ms)}


def plausible(curve: CostCurve) -> bool:
    """A batch of k tokens never costs much more than k single-token passes (compute is at
    most linear in k). A curve breaking this was measured under a burst of load (a page-cache
    miss, another process) and would stop the optimiser from ever verifying a draft."""
    c1 = curve.ms[0]
    return c1 > 0 and all(ms <= 1.5 * k * c1 for k, ms in zip(curve.ks, curve.ms))


def agrees(backend, curve: CostCurve, vocab_size: int, tolerance: float = 2.0) -> bool:
    """A quick probe (k=1 and k=8, two repetitions each on a short prefix) against a cached
    curve: a curve measured while the machine was busy (or on other hardware under the same
    key) is measured again instead of steering every completion wrongly."""
    probe = measure(backend, vocab_size, past_len=32, reps=2, ks=(1, 8))
    return all(1 / tolerance < probe(k) / curve(k) < tolerance for k in probe.ks)


def flat_curve() -> CostCurve:
    """A curve for when nothing is measured yet: verification cost grows slowly with k."""
    return CostCurve(KS, tuple(1.0 + 0.02 * k for k in KS))


def cache_path(model_id: str, device: str, dtype: str, kind: str = "cost") -> Path:
    """Per (model, device, dtype) file of measured facts: `cost` curves, learned `acceptance`."""
    from .models import cache_root
    h = hashlib.sha1(f"{model_id}|{device}|{dtype}".encode()).hexdigest()[:16]
    return cache_root() / kind / f"{h}.json"


def measure(backend, vocab_size: int, past_len: int = 256, reps: int = 5,
            ks: tuple[int, ...] = KS) -> CostCurve:
    """Time verify() over chains of k tokens on top of a `past_len`-token prefix.

    The minimum over repetitions estimates the true cost: other load on the machine only ever
    adds time, and one slow outlier must not make every larger k look expensive."""
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, vocab_size, past_len).tolist()
    backend.prefill(prompt, key=None)
    backend.verify(np.asarray(prompt[:1]), np.asarray([-1]), np.asarray([0]))   # warm-up
    backend.commit(past_len)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(reps):                 # interleaved, so a burst of load hits every k alike
        for k in ks:
            toks = rng.integers(0, vocab_size, k)
            t0 = time.perf_counter()
            backend.verify(toks, np.arange(-1, k - 1), np.arange(k))
            times[k].append((time.perf_counter() - t0) * 1000)
            backend.commit(past_len)
    ms = [float(np.min(times[k])) for k in ks]
    backend.finish([], None)
    # Not forced monotone: a bigger batch can really cost less (kernel group sizes); the curve
    # pads to it (batch_for), so a dip from noise only ever costs a few padded nodes.
    return CostCurve(tuple(ks), tuple(ms))


def device_key(backend) -> str:
    """The device part of a cache key: on CPU with the thread count, which changes the
    curve's shape (small GEMMs scale badly)."""
    import torch
    return backend.device if backend.device != "cpu" else f"cpu-t{torch.get_num_threads()}"


def load_or_measure(backend, model_id: str, vocab_size: int) -> CostCurve:
    device = device_key(backend)
    path = cache_path(model_id, device, backend.dtype)
    try:
        d = json.loads(path.read_text())
        cached = CostCurve(tuple(d["ks"]), tuple(d["ms"]))
        if cached.ks == KS and plausible(cached) and agrees(backend, cached, vocab_size):
            return cached
    except (OSError, ValueError, KeyError, TypeError):   # none yet, or truncated, or not a curve
        pass
    curve = measure(backend, vocab_size)
    if not plausible(curve):              # measured during a burst of load: once more
        curve = measure(backend, vocab_size)
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({**curve.to_json(), "for": f"{model_id} {device} {backend.dtype}"}))
        tmp.replace(path)
    except OSError as e:                  # a full disk or read-only cache: measure again next time
        tmp.unlink(missing_ok=True)
        log.warning("could not save the cost curve to %s: %s", path, e)
    return curve
