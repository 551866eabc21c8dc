"""The engine thread: a one-thread job queue for blocking work (generation, warm-ups, model
loading, index updates), shared by the LSP server and the HTTP service.

An engine runs one sequence at a time (one KV cache), so one thread is all it can use; the
front ends' event loops only await the futures this returns and never run the model. Like `loop.run_in_executor` with a one-worker pool, but the thread is a daemon: an editor
that exits the server in the middle of a model download or a long generation is not kept
waiting for it (`ThreadPoolExecutor` threads are joined at interpreter exit).

Load a model on the worker that will run it (`call`): llama.cpp built with OpenMP runs its
forward passes about 2x slower on a thread other than the one that ran its first (measured on
2 cores, IQ4_NL: the same two verify steps 59 ms when loaded and run on one thread, 115 ms when
loaded, cost-measured and warmed on another).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any, Callable


class Worker:
    """Runs submitted calls one at a time, in order, on one daemon thread."""

    def __init__(self, name: str):
        self._jobs: "queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future, Callable, tuple] | None]" = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Schedule `fn(*args)`; the returned future is awaitable on the calling loop. Cancelling
        it before the job starts skips the job; after, only the result is dropped.
        Raises RuntimeError once the worker is closed."""
        if self._closed:
            raise RuntimeError(f"{self._thread.name} is closed")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        return fut

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the worker thread and wait for its result (from a thread that
        runs no event loop, e.g. a command's main thread loading the model)."""
        if self._closed:
            raise RuntimeError(f"{self._thread.name} is closed")
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((None, done, fn, args))
        return done.result()

    def close(self) -> None:
        """Stop after the jobs already queued (they still run, so their awaiters are answered)."""
        if not self._closed:
            self._closed = True
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
            if loop is None:                    # call(): a waiting thread, not a loop
                fut.set_exception(error) if error is not None else fut.set_result(result)
                continue
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
