"""One completion at a cursor, fast: cache, debounce, newest request only, cancellation, warm-up.

Per document only the newest request runs: a new request cancels the previous one, which
returns nothing (while it waits out the debounce) or stops the engine within one decoding
step (`CompletionRequest.is_cancelled` is polled between steps). Cancellation is re-checked
after every await. The engine runs in one worker thread, so the event loop never blocks.

Warm-ups (lsp/warmup.py) run on the same engine thread; a completion request cancels them.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Callable

from codeswift.ending import postprocess
from codeswift.errors import CancelledError
from codeswift.types import CompletionEngine, CompletionRequest, CompletionResult
from codeswift.worker import Worker

from codeswift.completion_cache import CompletionCache
from .context import decide_stop, language_of
from .documents import Document
from .options import Options
from .stats import RollingStats
from .ticket import Ticket
from .warmup import WarmUps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    id: str
    text: str
    cached: bool


class Completer:
    """Turns (document, cursor) into a `Suggestion` using `engine_of()`'s engine."""

    def __init__(self, options: Options, engine_of: Callable[[], CompletionEngine | None],
                 trace: Callable[[str], None] = lambda _msg: None):
        self.options, self.engine_of, self.trace = options, engine_of, trace
        self.cache = CompletionCache()
        self.stats = RollingStats()
        self._latest: dict[str, Ticket] = {}
        self._ids = itertools.count(1)
        self._worker = Worker("codeswift-engine")
        self.warmups = WarmUps(options, engine_of, self._worker, self.request, trace)
        self.generating = 0                 # long generations running (codeswift/generate)

    @property
    def worker(self) -> Worker:
        """The engine thread: completions, warm-ups, and the model's loading (codeswift/worker.py)."""
        return self._worker

    async def complete(self, doc: Document, offset: int,
                       on_start: Callable[[], None] | None = None) -> Suggestion | None:
        """The suggestion at `offset` of `doc`, or None (nothing to say, superseded, not ready)."""
        t0 = time.perf_counter()
        ticket = Ticket(on_start)
        if (previous := self._latest.get(doc.uri)) is not None:
            previous.cancel()
        self._latest[doc.uri] = ticket
        self.warmups.cancel()
        self.warmups.region = (doc.uri, doc.position_at(offset).line)
        try:
            prefix, suffix = doc.cursor_window(offset)
            for entry, typed in self.cache.lookup(doc.uri, prefix, suffix):
                if typed and self.options.verify_cached:
                    break                  # typed along: the engine verifies the rest (its first draft)
                hit = entry.text[typed:]
                self.stats.record(_ms(t0), 0, None, cached=True)
                return Suggestion(self._next_id(), hit, cached=True) if hit else None
            if self.engine_of() is None or self.generating:
                return None                 # still loading, or the engine is busy generating
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

    async def generate(self, doc: Document, offset: int, on_text: Callable[[str], None],
                       **fields) -> CompletionResult:
        """A long generation at `offset` (codeswift/generate): `on_text` gets each piece of text
        as the engine accepts tokens (engine thread); `fields` override the request's
        (max_tokens, stop, repetition_penalty, penalty_window). Cancelling the await stops the
        engine at its next step. Inline completions meanwhile return nothing at once instead
        of queueing behind it."""
        self.warmups.cancel()
        ticket = Ticket()
        req = self.request(doc, offset, ticket.is_cancelled)
        for k, v in fields.items():
            setattr(req, k, v)
        req.on_text = on_text
        self.generating += 1
        try:
            result = await self._run(ticket, req)
        finally:
            self.generating -= 1
        if result is None:                  # stopped by the engine's cancellation check
            raise CancelledError("generation cancelled")
        return result

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
        fut = self._worker.submit(self._work, self.engine_of(), ticket, req)
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

    def _work(self, engine: CompletionEngine, ticket: Ticket, req: CompletionRequest) -> CompletionResult:
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

    # -- warm-up (lsp/warmup.py) ---------------------------------------------------------
    def touched(self, doc: Document, offset: int | None) -> None:
        """The user opened `doc` (offset None) or edited it at `offset`: maybe warm there."""
        self.warmups.touched(doc, offset)

    def engine_ready(self) -> None:
        self.warmups.engine_ready()

    def forget(self, uri: str) -> None:
        self.cache.forget(uri)
        self.warmups.forget(uri)
        if (ticket := self._latest.pop(uri, None)) is not None:
            ticket.cancel()

    def close(self) -> None:
        self.warmups.cancel()
        for ticket in self._latest.values():
            ticket.cancel()
        self._worker.close()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _path(uri: str) -> str:
    if uri.startswith("file://"):
        from pygls.uris import to_fs_path
        return to_fs_path(uri) or uri
    return uri
