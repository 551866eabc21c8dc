"""A one-thread job queue for blocking work (model loading, generation, index updates).

Like `loop.run_in_executor` with a one-worker pool, but the thread is a daemon: an editor
that exits the server in the middle of a model download or a long generation is not kept
waiting for it (`ThreadPoolExecutor` threads are joined at interpreter exit).
"""
from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable


class Worker:
    """Runs submitted calls one at a time, in order, on one daemon thread."""

    def __init__(self, name: str):
        self._jobs: "queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future, Callable, tuple] | None]" = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Schedule `fn(*args)`; the returned future is awaitable on the calling loop. Cancelling
        it before the job starts skips the job; after, only the result is dropped."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        return fut

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fut, fn, args = job
            if fut.cancelled():
                continue
            try:
                result, error = fn(*args), None
            except BaseException as e:          # delivered to the awaiting coroutine
                result, error = None, e
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:                # the loop is closed: nobody is waiting
                return


def _settle(fut: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
