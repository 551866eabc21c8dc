"""Rolling completion statistics for `codeswift/status` (docs/protocol.md, `Status.stats`)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    ms: float
    tokens: int
    accepted_per_step: float | None     # None for cache hits (no model run)
    speedup: float | None
    prefill_ms: float | None = None     # time to the first token (the prompt's fill + the first step)
    engine_ms: float | None = None      # the engine's own time (the rest of `ms`: queue, LSP, post-processing)
    steps: int | None = None            # verify steps (the first one, which yields the first token, included)
    verify_ms: float | None = None      # their forward passes
    draft_ms: float | None = None       # drafting them


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


class RollingStats:
    """The last `window` answered completions, plus counters since the server started."""

    def __init__(self, window: int = 200):
        self.samples: deque[Sample] = deque(maxlen=window)
        self.completions = self.cache_hits = self.model_runs = 0
        self.shown = self.accepted = self.accepted_chars = 0

    def record(self, ms: float, tokens: int, stats: dict | None, cached: bool) -> None:
        """One completion answered: from the cache (`cached`) or from a model run with its stats."""
        self.completions += 1
        if cached:
            self.cache_hits += 1
            self.samples.append(Sample(ms, tokens, None, None))
            return
        self.model_runs += 1
        stats = stats or {}
        self.samples.append(Sample(ms, tokens, stats.get("accepted_per_step"), stats.get("est_speedup"),
                                   stats.get("first_token_ms", stats.get("prefill_ms")), stats.get("total_ms"),
                                   stats.get("steps"),
                                   stats.get("verify_ms"), stats.get("draft_ms")))

    def to_json(self) -> dict:
        ms = [s.ms for s in self.samples]
        last = self.samples[-1] if self.samples else None
        lookups = self.cache_hits + self.model_runs
        return {
            "completions": self.completions,
            "p50Ms": _round(percentile(ms, 50)), "p95Ms": _round(percentile(ms, 95)),
            "lastMs": _round(last.ms) if last else None,
            "lastTokens": last.tokens if last else None,
            "acceptedPerStep": _mean([s.accepted_per_step for s in self.samples if s.accepted_per_step]),
            "speedup": _mean([s.speedup for s in self.samples if s.speedup]),
            "cacheHitRate": round(self.cache_hits / lookups, 3) if lookups else None,
            "lastPrefillMs": _round(last.prefill_ms) if last and last.prefill_ms is not None else None,
            "lastEngineMs": _round(last.engine_ms) if last else None,
            "lastSteps": last.steps if last else None,
            "lastVerifyMs": _round(last.verify_ms) if last else None,
            "lastDraftMs": _round(last.draft_ms) if last else None,
            "shown": self.shown, "accepted": self.accepted, "acceptedChars": self.accepted_chars,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
