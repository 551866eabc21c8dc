"""The server's loading and indexing state machine, and the live index behind the editor.

States (`codeswift/status`, docs/protocol.md):

    loading ──model loaded──▶ indexing ──index built──▶ ready
       │                         └──build failed──▶ ready (completions without repository drafts)
       └──load failed──▶ error
    ready ──codeswift/reindex──▶ indexing ──▶ ready

Once ready, the automatic general corpus (std_corpus.py) is built or updated on a thread of its
own, with `$/progress` titled "codeswift: corpus"; the state stays `ready` meanwhile.

Completions work in every state but `loading` and `error` (without repository drafts while
`indexing`). Model loading, index builds and per-file index updates run one at a time on a
background thread, never on the engine thread, so completions go on meanwhile. Edits reach the
index once the user pauses for INDEX_DELAY_S (per document).
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Callable, Protocol

from lsprotocol import types
from pygls.uris import to_fs_path

from codeswift.errors import CodeswiftError
from codeswift.worker import Worker

from .documents import DocumentStore
from .host import Host
from .progress import Progress, ProgressServer

log = logging.getLogger(__name__)

INDEX_DELAY_S = 0.5                     # coalesce index updates while the user types
# let the first suggestions of a session go first (tests set 0)
CORPUS_DELAY_S = float(os.environ.get("CODESWIFT_CORPUS_DELAY_S", "5"))


class StateServer(ProgressServer, Protocol):
    """What the state machine needs from the language server."""
    documents: DocumentStore
    message: str

    def set_state(self, state: str, message: str) -> None: ...
    def show(self, message: str, kind: types.MessageType) -> None: ...
    def log_message(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None: ...
    def spawn(self, coro) -> None: ...


class Indexing:
    """Loads the host's engine, builds and refreshes its repository index, feeds it edits."""

    def __init__(self, ls: StateServer, host: Host, trace: Callable[[str], None],
                 on_loaded: Callable[[], None], engine_worker: Worker | None = None):
        """`engine_worker`: the thread completions run on; the model is loaded there too (see
        codeswift/worker.py), else on the background thread."""
        self.ls, self.host, self.trace, self.on_loaded = ls, host, trace, on_loaded
        self.engine_worker = engine_worker
        self._bg: Worker | None = None
        self._corpus_bg: Worker | None = None
        self.corpus_note = ""
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def load(self) -> None:
        """loading → indexing → ready, or → error (shown to the user)."""
        self._bg = Worker("codeswift-background")
        job = (self.engine_worker or self._bg).submit(self.host.load)
        message = f"loading {self.host.info.model}"
        title = "codeswift: connecting" if self.host.options.server_url else "codeswift: loading model"
        async with Progress(self.ls, title, message) as progress:
            self.ls.set_state("loading", message)
            try:
                note = await job
            except Exception as e:
                log.exception("loading failed")
                progress.end_message = "failed"
                self.ls.set_state("error", str(e) if isinstance(e, CodeswiftError) else f"{type(e).__name__}: {e}")
                self.ls.show(f"codeswift: {self.ls.message}", types.MessageType.Error)
                return
            progress.end_message = "ready"
        self.ls.log_message(note)
        self.on_loaded()
        if self.host.needs_indexing:
            await self._run(f"indexing {self.host.root}", self.host.index)
        else:
            self.ls.set_state("ready", note)
        if self.host.needs_corpus:
            await asyncio.sleep(CORPUS_DELAY_S)
            await self.build_corpus()

    async def build_corpus(self) -> bool:
        """Build or update the automatic corpus on its own thread (completions and index updates
        go on meanwhile), with `$/progress`; a failure is logged, completions go on without it."""
        self._corpus_bg = self._corpus_bg or Worker("codeswift-corpus")
        try:
            plan = await self._corpus_bg.submit(self.host.corpus_plan)
        except Exception as e:
            log.exception("corpus plan failed")
            self.ls.log_message(f"codeswift: no corpus ({type(e).__name__}: {e})", types.MessageType.Warning)
            return False
        async with Progress(self.ls, "codeswift: corpus", f"indexing {plan.describe()}") as progress:
            report = progress.report_threadsafe()

            def listener(stage: str, done: int, total: int) -> None:
                report(f"{stage} {done:,}/{total:,}", int(100 * done / total) if total else None)
            try:
                note = await self._corpus_bg.submit(self.host.build_corpus, plan, listener)
            except Exception as e:
                log.exception("corpus build failed")
                progress.end_message = "failed"
                self.ls.log_message(f"codeswift: corpus build failed ({type(e).__name__}: {e}); "
                                    "completing without it", types.MessageType.Warning)
                return False
            progress.end_message = "done"
        self.corpus_note = note
        self.ls.log_message(note)
        return True

    async def reindex(self) -> dict:
        """`codeswift/reindex`: build the index if there is none yet, else refresh it from disk."""
        if self._bg is None or not self.host.ready:
            return {"ok": False, "message": "the model is not loaded yet"}
        if self.host.needs_indexing:
            ok = await self._run(f"indexing {self.host.root}", self.host.index)
        elif self.host.repo_index is not None:
            ok = await self._run(f"re-indexing {self.host.root}", self.host.refresh_index)
        else:
            return {"ok": False, "message": f"no repository index: {self.host.index_skipped()}"}
        return {"ok": True} if ok else {"ok": False, "message": self.ls.message}

    async def _run(self, message: str, job: Callable[[], str]) -> bool:
        """Run an indexing job in the background with state `indexing` and progress."""
        self.ls.set_state("indexing", message)
        async with Progress(self.ls, "codeswift: indexing", message) as progress:
            try:
                note = await self._bg.submit(job)
            except Exception as e:
                log.exception("%s failed", message)
                progress.end_message = "failed"
                note = f"{message} failed ({type(e).__name__}: {e}); completing without it"
                self.ls.log_message(note, types.MessageType.Warning)
                self.ls.set_state("ready", note)
                return False
            progress.end_message = "done"
        self.ls.log_message(note)
        self.ls.set_state("ready", note)
        return True

    # -- live index ----------------------------------------------------------------------
    def update_later(self, uri: str, delay: float = INDEX_DELAY_S) -> None:
        """Feed the document's current text to the repository index once the user pauses."""
        if self.host.repo_index is None or not uri.startswith("file:"):
            return
        if (timer := self._timers.pop(uri, None)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[uri] = loop.call_later(delay, lambda: self.ls.spawn(self._update(uri)))

    async def _update(self, uri: str) -> None:
        self._timers.pop(uri, None)
        doc, path = self.ls.documents.get(uri), to_fs_path(uri)
        if path is None or self._bg is None:
            return
        if doc is None:                              # closed: back to what is on disk
            if not self.host.inside(path):           # never read a file outside the workspace
                return
            text = await self._bg.submit(_disk_text, path)
        elif doc.unusable_reason():
            return
        else:
            text = doc.text
        try:
            if await self._bg.submit(self.host.update_file, path, text):
                self.trace(f"index: {path} updated ({'removed' if text is None else len(text)})")
        except Exception:
            log.exception("index update for %s failed", path)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for worker in (self._bg, self._corpus_bg):
            if worker is not None:
                worker.close()


def _disk_text(path: str) -> str | None:
    """The file's text; None when it is gone or unreadable (it leaves the index)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace") if Path(path).is_file() else None
    except OSError:
        return None
