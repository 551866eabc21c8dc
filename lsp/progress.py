"""Work-done progress (`$/progress`): server-initiated around loading and indexing, and on a
client-supplied token around one completion's generation."""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Callable, Protocol

from lsprotocol import types

log = logging.getLogger(__name__)


class ProgressServer(Protocol):
    """The part of a pygls LanguageServer that progress reports use."""
    client_capabilities: types.ClientCapabilities
    work_done_progress: Any


class Progress:
    """Server-initiated `$/progress` around a block, when the client supports it."""

    def __init__(self, ls: ProgressServer, title: str, message: str):
        self.ls, self.title, self.message = ls, title, message
        self.token: str | None = None
        self.end_message = "done"

    async def __aenter__(self) -> "Progress":
        caps = self.ls.client_capabilities
        if caps.window is None or not caps.window.work_done_progress:
            return self
        token = f"codeswift-{uuid.uuid4()}"
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(token), timeout=5)
        except Exception as e:                      # the client refused or never answered
            log.info("no work done progress: %s", e)
            return self
        self.token = token
        self.ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title=self.title, message=self.message, cancellable=False))
        return self

    def report_threadsafe(self) -> Callable[[str, int | None], None]:
        """`report(message, percentage)` callable from any thread (a no-op without a token)."""
        loop = asyncio.get_running_loop()

        def report(message: str, percentage: int | None = None) -> None:
            if self.token is not None:
                loop.call_soon_threadsafe(self._report, message, percentage)
        return report

    def _report(self, message: str, percentage: int | None) -> None:
        if self.token is not None:                  # ended meanwhile: nothing to report on
            self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage))

    async def __aexit__(self, *exc) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=self.end_message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
            self.token = None


class RequestProgress:
    """Work-done progress on a client-supplied token: begins when generation starts."""

    def __init__(self, ls: ProgressServer, token: types.ProgressToken | None):
        self.ls, self.token, self.begun, self.ended = ls, token, False, False

    def begin_threadsafe(self) -> Callable[[], None] | None:
        if self.token is None:
            return None
        loop = asyncio.get_running_loop()
        return lambda: loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        if self.ended:
            return
        self.begun = True
        self.ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
            title="codeswift", message="generating", cancellable=True))

    def end(self, message: str) -> None:
        self.ended = True
        if self.begun:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
            self.begun = False
