"""Retrieval timing: when querying the slower datastores is not worth it this step.

Cheap sources (own context, preference cache) are always asked. Slow ones (repository,
corpus) are skipped when a cheap source already offers a long draft, and back off
exponentially after consecutive steps in which nothing they drafted was accepted.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TimingPolicy:
    enabled: bool = True
    long_draft: int = 8                 # a cheap draft this long makes slow sources unnecessary
    max_backoff: int = 16
    _misses: dict = field(default_factory=dict)
    _skip_until: dict = field(default_factory=dict)

    def reset(self) -> None:
        self._misses.clear()
        self._skip_until.clear()

    def should_query(self, source: str, step: int, best_cheap_len: int) -> bool:
        if not self.enabled:
            return True
        if best_cheap_len >= self.long_draft:
            return False
        return step >= self._skip_until.get(source, 0)

    def record(self, source: str, step: int, accepted: int) -> None:
        """After verification: how many tokens this source's nodes contributed to the path."""
        if accepted > 0:
            self._misses[source] = 0
            self._skip_until.pop(source, None)
            return
        m = self._misses.get(source, 0) + 1
        self._misses[source] = m
        if m >= 2:
            self._skip_until[source] = step + min(2 ** (m - 1), self.max_backoff)
