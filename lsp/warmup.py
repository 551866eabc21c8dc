"""The warm-up state machine: prefill the prompt where the user is about to ask, while idle.

When the user opens a document (LSP does not say where the cursor is: the top part that fits
the prompt budget) or edits in a new region (there), the prompt is prefilled into the engine's
KV cache once the editor is idle (`CompletionEngine.warm`), on the engine thread.

States: idle → pending (waiting out `warmupDelayMs`) → running (on the engine thread) → idle.
At most one warm-up is pending or running. A completion request, a newer warm-up or an edit
of its document cancels it; a running one stops at its next prefill chunk. Touched while the
engine is still loading: remembered, and started once it is ready.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Callable

from codeswift.types import CompletionEngine, CompletionRequest
from codeswift.worker import Worker

from .documents import Document
from .options import Options
from .ticket import Ticket

log = logging.getLogger(__name__)

REGION_LINES = 8            # an edit farther than this from the last warm-up or completion: new region


@dataclass
class WarmUp:
    """The pending or running warm-up."""
    uri: str
    ticket: Ticket
    task: asyncio.Task | None = None


class WarmUps:
    """Schedules warm-ups on the completer's engine thread (`worker`)."""

    def __init__(self, options: Options, engine_of: Callable[[], CompletionEngine | None], worker: Worker,
                 request: Callable[[Document, int, Callable[[], bool]], CompletionRequest],
                 trace: Callable[[str], None]):
        self.options, self.engine_of, self.worker, self.request, self.trace = \
            options, engine_of, worker, request, trace
        self.pending: WarmUp | None = None
        self.region: tuple[str, int] | None = None           # (uri, line) last warmed or completed
        self._deferred: tuple[Document, int | None] | None = None   # touched while the engine loaded

    def touched(self, doc: Document, offset: int | None) -> None:
        """The user edited `doc` around `offset` (None: opened it): warm the prompt there once idle,
        if the region changed (another document, or more than REGION_LINES lines away) or the
        pending warm-up is for this document (its text just changed)."""
        if not self.options.warmup:
            return
        engine = self.engine_of()
        if engine is None:
            self._deferred = (doc, offset)
            return
        line = 0 if offset is None else doc.position_at(offset).line
        same = self.region is not None and self.region[0] == doc.uri \
            and abs(self.region[1] - line) <= REGION_LINES
        if (same and (self.pending is None or self.pending.uri != doc.uri)) or doc.unusable_reason():
            return
        self.cancel()
        self.region = (doc.uri, line)
        warm = self.pending = WarmUp(doc.uri, Ticket())
        warm.task = asyncio.ensure_future(self._wait_then_warm(warm, doc, offset, engine))

    def engine_ready(self) -> None:
        """The engine is loaded: warm where the user was meanwhile."""
        if self._deferred is not None:
            doc, offset = self._deferred
            self._deferred = None
            self.touched(doc, offset)

    def cancel(self, uri: str | None = None) -> None:
        """Drop the pending warm-up or stop the running one (only `uri`'s when given)."""
        warm = self.pending
        if warm is None or (uri is not None and warm.uri != uri):
            return
        self.pending = None
        warm.ticket.cancel()
        if warm.task is not None:
            warm.task.cancel()

    def forget(self, uri: str) -> None:
        """`uri` was closed (re-opened, it is warmed afresh: its text may differ)."""
        self.cancel(uri)
        if self.region is not None and self.region[0] == uri:
            self.region = None
        if self._deferred is not None and self._deferred[0].uri == uri:
            self._deferred = None

    async def _wait_then_warm(self, warm: WarmUp, doc: Document, offset: int | None,
                              engine: CompletionEngine) -> None:
        version = doc.version
        try:
            await asyncio.sleep(self.options.warmup_delay_ms / 1000)
            if warm.ticket.cancelled or doc.version != version:
                return
            warm.ticket.waiter = self.worker.submit(self._warm, engine, warm.ticket, replace(doc), offset)
            await warm.ticket.waiter
        except asyncio.CancelledError:
            pass                                             # superseded: the worker skips or stops it
        finally:
            if self.pending is warm:
                self.pending = None

    def _warm(self, engine: CompletionEngine, ticket: Ticket, doc: Document, offset: int | None) -> int:
        """Engine thread (`doc`: a snapshot): prefill, unless a completion or a newer warm-up came
        first. Errors are logged, never raised: a warm-up is only ever an optimisation."""
        if ticket.cancelled:
            return 0
        t0 = time.perf_counter()
        try:
            req = self.request(doc, engine.opening_offset(doc.text) if offset is None else offset,
                               ticket.is_cancelled)
            cached = engine.warm(req)
        except Exception:
            log.exception("warm-up of %s failed (ignored)", doc.uri)
            return 0
        self.trace(f"warm-up: {cached} prompt tokens of {req.doc_id} cached in "
                   f"{(time.perf_counter() - t0) * 1000:.0f} ms" + (" (cancelled meanwhile)" if ticket.cancelled else ""))
        return cached
