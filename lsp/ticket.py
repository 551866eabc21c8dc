"""One request's cancellation flag, shared between the event loop and the engine thread."""
from __future__ import annotations

import asyncio
import threading
from typing import Callable


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
