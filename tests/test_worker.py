"""The engine thread (codeswift/worker.py): jobs in order on one thread, from a loop or not."""
import asyncio
import threading

import pytest

from codeswift.worker import Worker


def test_call_runs_on_the_worker_thread_and_returns_or_raises():
    w = Worker("test-engine")
    ident = w.call(threading.get_ident)
    assert ident != threading.get_ident()
    assert w.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        w.call(lambda: 1 / 0)

    async def from_loop():                   # submit() from a loop lands on the same thread
        return await w.submit(threading.get_ident)
    assert asyncio.run(from_loop()) == ident
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.call(threading.get_ident)


def test_engine_loaded_on_the_worker_serves_on_it(tiny_qwen):
    """`codeswift serve` loads the model on the engine thread and hands that thread to the
    scheduler, so every forward pass runs where the first one did."""
    from codeswift.engine import Engine, EngineConfig
    from service.scheduler import Scheduler
    from codeswift.types import CompletionRequest
    w = Worker("test-engine")
    engine = w.call(Engine.load, EngineConfig(model=str(tiny_qwen), backend="transformers", measure_cost=False))
    seen = []
    complete = engine.complete
    engine.complete = lambda req: (seen.append(threading.get_ident()), complete(req))[1]
    sched = Scheduler(engine, worker=w)

    async def go():
        return await sched.complete(CompletionRequest(prefix="def f(x):\n    ", max_tokens=4), threading.Event())
    assert asyncio.run(go()).tokens
    assert seen == [w.call(threading.get_ident)]
    w.close()
