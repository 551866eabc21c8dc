"""Bounded FIFO queue: 429 when full, disconnects cancel queued/running work, errors never kill it."""
import asyncio
import time

import httpx
import pytest

from codeswift.types import EngineInfo

from svc_testkit import CODE, GatedEngine, make_app, serve

URL = "/v1/codeswift/complete"


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


async def test_50_concurrent_requests_get_200_or_429(engine, expected):
    gated = GatedEngine(engine)
    app = make_app(gated, queue_size=4)
    bodies = [{"prefix": CODE[:30 + i], "max_tokens": 8, "doc_id": f"c{i}"} for i in range(50)]
    with serve(app) as url:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            tasks = [asyncio.create_task(client.post(URL, json=b)) for b in bodies]
            # 1 running + 4 waiting are admitted; the other 45 must be refused right away.
            deadline = time.monotonic() + 20
            while sum(t.done() for t in tasks) < 45:
                assert time.monotonic() < deadline, "the refusals did not arrive"
                await asyncio.sleep(0.02)
            assert app.state.service.scheduler.depth() == (1, 4)
            gated.gate.set()
            responses = await asyncio.gather(*tasks)
            codes = [r.status_code for r in responses]
            assert sorted(set(codes)) == [200, 429] and codes.count(200) == 5 and codes.count(429) == 45
            for body, r in zip(bodies, responses):
                if r.status_code == 200:
                    assert r.json()["tokens"] == expected(prefix=body["prefix"], max_tokens=8).tokens
                else:
                    assert r.json()["error"]["type"] == "queue_full" and r.headers["retry-after"] == "1"
            # Still healthy, and the queue drained: a new request is served.
            assert (await client.get("/health")).status_code == 200
            r = await client.post(URL, json=bodies[0])
            assert r.status_code == 200 and app.state.service.scheduler.depth() == (0, 0)
    assert gated.calls == 6


def test_disconnect_cancels_queued_and_running_requests(engine):
    gated = GatedEngine(engine)
    app = make_app(gated, queue_size=4)
    svc = app.state.service
    with serve(app) as url:
        # A: running, parked at the gate; its client gives up after 0.5 s.
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + URL, json={"prefix": "a = ", "max_tokens": 8}, timeout=0.5)
        assert gated.started.is_set()
        # B: queued behind A; its client gives up too.
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + URL, json={"prefix": "b = ", "max_tokens": 8}, timeout=0.5)
        wait_for(lambda: svc.scheduler.depth() == (1, 0))      # B left the queue without running
        gated.gate.set()
        wait_for(lambda: svc.scheduler.depth() == (0, 0))
        assert gated.calls == 1                                 # B never reached the engine
        assert gated.outcomes == ["CancelledError"]             # A stopped at the engine's cancel check
        metrics = httpx.get(url + "/metrics").text
        assert "codeswift_completions_cancelled_total 2.0" in metrics
        assert httpx.post(url + URL, json={"prefix": "c = ", "max_tokens": 4}).status_code == 200


class BrokenEngine:
    """An engine whose completions raise an unexpected error."""
    info, tokenizer = EngineInfo("broken"), None

    def complete(self, req):
        raise RuntimeError("boom")


def test_unexpected_engine_error_is_500_and_the_server_lives():
    with serve(make_app(BrokenEngine())) as url:
        for _ in range(3):
            r = httpx.post(url + URL, json={"prefix": "x"})
            assert r.status_code == 500
            assert r.json() == {"error": {"message": "internal error: RuntimeError", "type": "internal_error"}}
        assert httpx.get(url + "/health").json() == {"status": "ok", "model": "broken"}
