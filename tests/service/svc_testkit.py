"""Shared helpers for the service tests: real uvicorn servers in threads, a gated engine."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

CODE = '''def add(a, b):
    return a + b

def fibonacci(n):
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

class Stack:
    def push(self, item):
'''


@contextmanager
def serve(app):
    """Run `app` with uvicorn on a free loopback port in a thread; yield its base URL."""
    import uvicorn
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


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
