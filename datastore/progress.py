"""A rich progress bar that costs nothing when switched off (library and server use), and
an optional listener for other front ends (the language server's `$/progress`)."""
from __future__ import annotations

import time
from typing import Callable

Listener = Callable[[str, int, int], None]     # (stage, done, total)


class Progress:
    """`with Progress(enabled) as p: step = p.stage("parsing", total); step(n)`."""

    def __init__(self, enabled: bool = True, console=None, listener: Listener | None = None,
                 every_s: float = 0.5):
        self.enabled = enabled
        self._bar = None
        self._console = console
        self._listener, self._every_s = listener, every_s

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn)
            self._bar = RichProgress(TextColumn("{task.description:<12}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=self._console or Console(stderr=True), transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def stage(self, description: str, total: int):
        """Start a stage; returns `advance(n=1)`. The listener hears the stage's start, its end
        and at most one update per `every_s` seconds in between."""
        bar = self._bar
        task = bar.add_task(description, total=total) if bar is not None else None
        listener = self._listener
        if listener is not None:
            listener(description, 0, total)
        state = {"done": 0, "told": time.monotonic()}

        def advance(n: int = 1) -> None:
            if bar is not None:
                bar.advance(task, n)
            if listener is not None:
                state["done"] += n
                now = time.monotonic()
                if state["done"] >= total or now - state["told"] >= self._every_s:
                    state["told"] = now
                    listener(description, state["done"], total)
        return advance if (bar is not None or listener is not None) else (lambda n=1: None)
