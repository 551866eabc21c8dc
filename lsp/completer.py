"""One completion at a cursor, fast: cache, debounce, newest request only, cancellation, warm-up.

Per document only the newest request runs: a new request cancels the previous one, which
returns nothing (while it waits out the debounce) or stops the engine within one decoding
step (`CompletionRequest.is_cancelled` is polled between steps). Cancellation is re-checked
after every await. The engine runs in one worker thread, so the event loop never blocks.

Warm-up: when the user opens a document (LSP does not say where the cursor is: the top part
that fits the prompt budget) or edits in a new region (there), the prompt is prefilled into the
engine's KV cache once the editor is idle (`Engine.warm`), on the same worker thread. At most one warm-up is pending or running; any completion request, a newer
warm-up or an edit of its document cancels it, and a running one stops at its next chunk.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from codeswift.errors import CancelledError
from codeswift.types import CompletionRequest, CompletionResult

from .completion_cache import CompletionCache
from .context import decide_stop, language_of
from .documents import Document
from .options import Options
from .postprocess import postprocess
from .stats import RollingStats
from .worker import Worker

log = logging.getLogger(__name__)

REGION_LINES = 8            # an edit farther than this from the last warm-up or completion: new region


@dataclass(frozen=True)
class Suggestion:
    id: str
    text: str
    cached: bool


class Ticket:
    """One request's cancellation flag, shared with the engine thread."""

    def __init__(self, on_start: Callable[[], None] | None = None):
        self._cancelled = threading.Event()
        self._on_start = on_start
        self.waiter: asyncio.Future | None = None
        self.checks = 0                      # is_cancelled calls = decoding steps started + 1

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.cancel()

    def is_cancelled(self) -> bool:
        """Polled by the engine between decoding steps (engine thread)."""
        self.checks += 1
        if self.checks == 1:
            self.started()
        return self._cancelled.is_set()

    def started(self) -> None:
        if self._on_start is not None:
            self._on_start()
            self._on_start = None


@dataclass
class WarmUp:
    """The pending or running warm-up."""
    uri: str
    ticket: Ticket
    task: asyncio.Task | None = None


class Completer:
    """Turns (document, cursor) into a `Suggestion` using `engine_of()`'s engine."""

    def __init__(self, options: Options, engine_of: Callable[[], Any],
                 trace: Callable[[str], None] = lambda _msg: None):
        self.options, self.engine_of, self.trace = options, engine_of, trace
        self.cache = CompletionCache()
        self.stats = RollingStats()
        self._latest: dict[str, Ticket] = {}
        self._ids = itertools.count(1)
        self._worker = Worker("codeswift-engine")
        self._warm: WarmUp | None = None
        self._region: tuple[str, int] | None = None         # (uri, line) last warmed or completed
        self._deferred: tuple[Document, int | None] | None = None   # touched while the engine loaded

    async def complete(self, doc: Document, offset: int,
                       on_start: Callable[[], None] | None = None) -> Suggestion | None:
        """The suggestion at `offset` of `doc`, or None (nothing to say, superseded, not ready)."""
        t0 = time.perf_counter()
        ticket = Ticket(on_start)
        if (previous := self._latest.get(doc.uri)) is not None:
            previous.cancel()
        self._latest[doc.uri] = ticket
        self.cancel_warm_up()
        self._region = (doc.uri, doc.position_at(offset).line)
        try:
            prefix, suffix = doc.cursor_window(offset)
            if (hit := self.cache.get(doc.uri, prefix, suffix)) is not None:
                self.stats.record(_ms(t0), 0, None, cached=True)
                return Suggestion(self._next_id(), hit, cached=True) if hit else None
            if self.engine_of() is None:
                return None                                  # still loading: empty, never blocks
            version = doc.version
            if self.options.debounce_ms:
                await asyncio.sleep(self.options.debounce_ms / 1000)
            if ticket.cancelled or doc.version != version:
                return None
            req = self.request(doc, offset, ticket.is_cancelled)
            result = await self._run(ticket, req)
        finally:
            if self._latest.get(doc.uri) is ticket:
                del self._latest[doc.uri]
        if result is None:
            return None
        text = postprocess(result.text, prefix, suffix, req.stop, req.language)
        self.cache.put(doc.uri, prefix, suffix, text)       # kept even when superseded
        if ticket.cancelled:
            return None
        self.stats.record(_ms(t0), len(result.tokens), result.stats, cached=False)
        st = result.stats or {}
        self.trace(f"completion for {doc.uri}: {st.get('prompt_tokens')} prompt tokens "
                   f"({st.get('reused_prompt_tokens')} reused), prefill {st.get('prefill_ms')} ms, "
                   f"{len(result.tokens)} tokens")
        return Suggestion(self._next_id(), text, cached=False) if text else None

    def request(self, doc: Document, offset: int, is_cancelled: Callable[[], bool]) -> CompletionRequest:
        """The engine request at `offset` of `doc`: completions and warm-ups build the same prompt
        under the same KV key."""
        prefix, suffix = doc.cursor_window(offset)
        language = language_of(doc.language_id, doc.uri)
        return CompletionRequest(prefix=prefix, suffix=suffix, path=_path(doc.uri), language=language,
                                 max_tokens=self.options.max_tokens, stop=decide_stop(prefix, suffix, language),
                                 speculative=self.options.speculative, doc_id=doc.uri,
                                 temperature=float(self.options.temperature), top_p=float(self.options.top_p),
                                 seed=self.options.seed, is_cancelled=is_cancelled)

    async def _run(self, ticket: Ticket, req: CompletionRequest) -> CompletionResult | None:
        engine = self.engine_of()
        if hasattr(engine, "complete_async"):                # remote: cancelling closes the request
            ticket.started()
            fut: asyncio.Future = asyncio.ensure_future(engine.complete_async(req))
        else:
            fut = self._worker.submit(self._work, engine, ticket, req)
        ticket.waiter = fut
        try:
            return await fut
        except asyncio.CancelledError:
            ticket.cancel()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise                                        # $/cancelRequest: the caller answers
            return None                                      # superseded by a newer request
        except CancelledError:
            return None

    def _work(self, engine: Any, ticket: Ticket, req: CompletionRequest) -> CompletionResult:
        """Engine thread: skip requests superseded while queued; report where a cancel stopped."""
        if ticket.cancelled:
            raise CancelledError("superseded before it started")
        try:
            return engine.complete(req)
        except CancelledError:
            self.trace(f"completion for {req.doc_id} cancelled after {max(ticket.checks - 1, 0)} "
                       f"decoding steps (checked before every step)")
            raise

    def _next_id(self) -> str:
        return str(next(self._ids))

    # -- warm-up -------------------------------------------------------------------------
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
        if not hasattr(engine, "warm"):                      # a remote engine
            return
        line = 0 if offset is None else doc.position_at(offset).line
        same = self._region is not None and self._region[0] == doc.uri \
            and abs(self._region[1] - line) <= REGION_LINES
        if (same and (self._warm is None or self._warm.uri != doc.uri)) or doc.unusable_reason():
            return
        self.cancel_warm_up()
        self._region = (doc.uri, line)
        warm = self._warm = WarmUp(doc.uri, Ticket())
        warm.task = asyncio.ensure_future(self._warm_up(warm, doc, offset, engine))

    def engine_ready(self) -> None:
        """The engine is loaded: warm where the user was meanwhile."""
        if self._deferred is not None:
            doc, offset = self._deferred
            self._deferred = None
            self.touched(doc, offset)

    def cancel_warm_up(self, uri: str | None = None) -> None:
        """Drop the pending warm-up or stop the running one (only `uri`'s when given)."""
        warm = self._warm
        if warm is None or (uri is not None and warm.uri != uri):
            return
        self._warm = None
        warm.ticket.cancel()
        if warm.task is not None:
            warm.task.cancel()

    async def _warm_up(self, warm: WarmUp, doc: Document, offset: int | None, engine: Any) -> None:
        version = doc.version
        try:
            await asyncio.sleep(self.options.warmup_delay_ms / 1000)
            if warm.ticket.cancelled or doc.version != version:
                return
            warm.ticket.waiter = self._worker.submit(self._warm_work, engine, warm.ticket, replace(doc), offset)
            await warm.ticket.waiter
        except asyncio.CancelledError:
            pass                                             # superseded: the worker skips or stops it
        finally:
            if self._warm is warm:
                self._warm = None

    def _warm_work(self, engine: Any, ticket: Ticket, doc: Document, offset: int | None) -> int:
        """Engine thread (`doc`: a snapshot): prefill, unless a completion or a newer warm-up came
        first. Errors are logged, never raised: a warm-up is only ever an optimisation."""
        if ticket.cancelled:
            return 0
        t0 = time.perf_counter()
        try:
            req = self.request(doc, opening_offset(engine, doc.text) if offset is None else offset,
                               ticket.is_cancelled)
            cached = engine.warm(req)
        except Exception:
            log.exception("warm-up of %s failed (ignored)", doc.uri)
            return 0
        self.trace(f"warm-up: {cached} prompt tokens of {req.doc_id} cached in {_ms(t0):.0f} ms"
                   + (" (cancelled meanwhile)" if ticket.cancelled else ""))
        return cached

    def forget(self, uri: str) -> None:
        self.cache.forget(uri)
        self.cancel_warm_up(uri)
        if self._deferred is not None and self._deferred[0].uri == uri:
            self._deferred = None
        if (ticket := self._latest.pop(uri, None)) is not None:
            ticket.cancel()

    def close(self) -> None:
        self.cancel_warm_up()
        for ticket in self._latest.values():
            ticket.cancel()
        self._worker.close()


def opening_offset(engine: Any, text: str) -> int:
    """Where to warm a document just opened (the cursor is unknown; editors mostly start at the
    top): the end of its first lines that fit the engine's prompt budget, the longest prefix that
    completions anywhere above it share up to their line. Engine thread (uses the tokenizer)."""
    prompts = getattr(engine, "prompts", None)
    if prompts is None:
        return len(text)
    tokens = offset = 0
    for line in text.splitlines(keepends=True):
        tokens += len(prompts.encode_lines(line))
        if tokens > prompts.budget.prefix:
            break
        offset += len(line)
    return offset


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _path(uri: str) -> str:
    if uri.startswith("file://"):
        from pygls.uris import to_fs_path
        return to_fs_path(uri) or uri
    return uri
