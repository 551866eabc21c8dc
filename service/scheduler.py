"""The engine behind a bounded, first-come-first-served queue on one worker thread.

The engine serialises completions anyway (one model, one KV cache), so it runs on one engine
thread (`codeswift.worker.Worker`, the same one the LSP server uses); the event loop only
awaits futures and never runs the model. A request is
admitted when fewer than `1 + queue_size` are in the system, else `QueueFull` (HTTP 429).
Cancelling a request (client gone) drops it from the queue if it has not started, or makes
the engine's `is_cancelled` poll return True if it has.
"""
from __future__ import annotations

import asyncio
import threading

from codeswift.errors import CancelledError
from codeswift.types import CompletionEngine, CompletionRequest, CompletionResult
from codeswift.worker import Worker


class QueueFull(Exception):
    """Every slot of the queue is taken; the client should retry later."""


class Scheduler:
    def __init__(self, engine: CompletionEngine, queue_size: int = 16, worker: Worker | None = None):
        """`worker`: the thread the engine was loaded on, when it was (see codeswift/worker.py)."""
        self._engine = engine
        self.capacity = queue_size + 1                  # waiting + the one running
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._live: set[threading.Event] = set()       # admitted and not yet released
        self._started: set[threading.Event] = set()    # running on the engine thread
        self._worker = worker or Worker("codeswift-engine")

    def depth(self) -> tuple[int, int]:
        """(running, waiting) right now."""
        with self._lock:
            return self._running, self._admitted - self._running

    async def complete(self, req: CompletionRequest, cancelled: threading.Event) -> CompletionResult:
        """Run `req` on the engine when its turn comes; cancelling the await cancels the job."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise QueueFull(f"the completion queue is full ({self.capacity - 1} waiting); retry later")
            self._admitted += 1
            self._live.add(cancelled)
        req.is_cancelled = cancelled.is_set
        try:
            fut = self._worker.submit(self._run, req, cancelled)
        except RuntimeError:                            # worker closed: the server is stopping
            self._release(cancelled)
            raise CancelledError("the server is shutting down")
        fut.add_done_callback(_retrieve)                # its error may have nobody left to read it
        try:
            # Shielded: the engine thread decides. A job that has not started leaves the queue
            # at once; a running one keeps its slot until the engine has really stopped.
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            with self._lock:
                cancelled.set()                         # running: stops at its next step
                if cancelled not in self._started:
                    self._release_locked(cancelled)     # queued: skipped when its turn comes
            raise

    def _run(self, req: CompletionRequest, cancelled: threading.Event) -> CompletionResult:
        with self._lock:
            if cancelled.is_set():
                self._release_locked(cancelled)
                raise CancelledError("cancelled while queued")
            self._started.add(cancelled)
            self._running += 1
        try:
            return self._engine.complete(req)
        finally:
            with self._lock:
                self._running -= 1
                self._started.discard(cancelled)
                self._release_locked(cancelled)

    def _release(self, cancelled: threading.Event) -> None:
        with self._lock:
            self._release_locked(cancelled)

    def _release_locked(self, cancelled: threading.Event) -> None:
        if cancelled in self._live:
            self._live.discard(cancelled)
            self._admitted -= 1

    def close(self) -> None:
        """Cancel everything queued or running and stop the worker (server shutdown)."""
        with self._lock:
            for ev in self._live:
                ev.set()
        self._worker.close()


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()
