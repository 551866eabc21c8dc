"""Shared helpers for the service tests: real uvicorn servers in threads, a gated engine."""
from __future__ import annotations

import threading
from dataclasses import replace

from codeswift.testing import SAMPLE_CODE as CODE
from codeswift.testing import serve_app as serve

__all__ = ["CODE", "serve", "make_app", "GatedEngine", "sse_events"]


def make_app(engine, **config):
    from service.app import ServiceConfig, create_app
    return create_app(engine, replace(ServiceConfig(), **config))


class GatedEngine:
    """The real engine behind a gate: completions wait until the test opens it."""

    def __init__(self, engine):
        self.engine = engine
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = 0
        self.outcomes: list[str] = []

    def complete(self, req):
        self.calls += 1
        self.started.set()
        assert self.gate.wait(20), "gate never opened"
        try:
            result = self.engine.complete(req)
        except Exception as e:
            self.outcomes.append(type(e).__name__)
            raise
        self.outcomes.append("ok")
        return result

    def __getattr__(self, name):
        return getattr(self.engine, name)


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of a server-sent-events body."""
    out = []
    for block in text.strip().split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            out.append((name, "\n".join(data)))
    return out
