"""A rich progress bar that costs nothing when switched off (library and server use)."""
from __future__ import annotations


class Progress:
    """`with Progress(enabled) as p: step = p.stage("parsing", total); step(n)`."""

    def __init__(self, enabled: bool = True, console=None):
        self.enabled = enabled
        self._bar = None
        self._console = console

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
        """Start a stage; returns `advance(n=1)`."""
        if self._bar is None:
            return lambda n=1: None
        task = self._bar.add_task(description, total=total)
        return lambda n=1: self._bar.advance(task, n)
