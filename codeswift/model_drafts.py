"""Drafts a model makes itself (self-speculation): the interface between such a source and
the drafter. The drafter (drafting.py) asks it after the retrieved tree is built, plans how far
it pays, and grafts its chain into the same tree; self_draft.py is the implementation."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from .sources import SELF, Draft, DraftContext


@dataclass
class ModelDraft:
    """A chain a model drafted itself: tokens, the top-1 probability of its distribution at
    each one, and (sampling mode) the distribution q [V] each token was drawn from."""
    tokens: list[int]
    confidence: list[float]
    q: list = field(default_factory=list)


class ModelDraftSource(ABC):
    """A source that drafts with the model itself (self-speculation, see self_draft.py).

    Unlike a retrieval source (DraftSource) it needs the backend, runs on the engine thread
    between verifications, and every token costs a forward pass. So the drafter asks it last,
    after the retrieved tree is built, and only as far as the expected gain pays for it: to
    continue the best retrieved chain, or from the root where retrieval has nothing."""
    name: str = SELF
    cheap = False
    always = False                    # draft every step regardless of the budget (measurement)
    max_len = 16                      # tokens per draft at most

    def reset(self, ctx: DraftContext, sampler=None) -> None:
        """Once per completion; `sampler` (loop.Sampler) when sampling, else greedy drafts."""

    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        """Update stage, as DraftSource.observe (the KV now holds the accepted path)."""

    def propose(self, ctx: DraftContext, max_len: int, max_drafts: int) -> list[Draft]:
        return []                     # not a retrieval source: see draft()

    @abstractmethod
    def draft(self, ctx: DraftContext, prefix: list[int], max_len: int) -> ModelDraft:
        """Up to `max_len` tokens continuing ctx.tokens + `prefix` (`prefix`: drafted tokens
        after the root, not in the KV). Leaves the backend's KV exactly as it found it."""

    @abstractmethod
    def draft_cost(self, given: int, drafted: int) -> float:
        """Time to draft `drafted` tokens after `given` tokens not in the KV (root + prefix),
        in the unit of the drafter's cost curve."""

    def expected_rate(self) -> float | None:
        """Acceptance of a drafted token given its parent was accepted, as the source measured
        it (SWIFT's layer search measures it teacher-forced); None when not measured."""
        return None
