"""codeswift/status (request and notification) and shown/accepted telemetry (docs/protocol.md)."""
import pytest

from lsp.stats import RollingStats, percentile
from lsp_testkit import end_of, status

on_shared_loop = pytest.mark.asyncio(loop_scope="session")

STATS_KEYS = {"completions", "p50Ms", "p95Ms", "lastMs", "lastTokens", "acceptedPerStep", "speedup",
              "cacheHitRate"}


def test_rolling_stats():
    assert percentile([], 50) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 95) == 95
    s = RollingStats()
    s.record(100.0, 10, {"accepted_per_step": 2.0, "est_speedup": 1.5, "prefill_ms": 40.0}, cached=False)
    assert s.to_json()["lastPrefillMs"] == 40.0
    s.record(300.0, 20, {"accepted_per_step": 4.0, "est_speedup": None}, cached=False)
    s.record(1.0, 0, None, cached=True)
    j = s.to_json()
    assert j["completions"] == 3 and j["p50Ms"] == 100.0 and j["p95Ms"] == 300.0
    assert j["lastMs"] == 1.0 and j["lastTokens"] == 0 and j["lastPrefillMs"] is None
    assert j["acceptedPerStep"] == 3.0 and j["speedup"] == 1.5 and j["cacheHitRate"] == 0.333


@on_shared_loop
async def test_status_shape(shared):
    st = await status(shared)
    assert set(st) >= {"state", "message", "model", "device", "dtype", "backend", "indexProgress", "stats"}
    assert st["state"] == "ready" and st["backend"] == "transformers"
    assert set(st["stats"]) >= STATS_KEYS


@on_shared_loop
async def test_status_notification_after_every_completion(docs, shared):
    text = "def square(x):\n    return x *"
    uri = docs.open("status_notify.py", text)
    seen = len(shared.status_notifications)
    result = await docs.inline(uri, *end_of(text))
    assert result.items
    # The notification is written before the reply, on the same stream.
    assert len(shared.status_notifications) == seen + 1
    note = shared.status_notifications[-1]
    assert note == await status(shared)
    stats = note["stats"]
    assert note["state"] == "ready" and stats["lastTokens"] > 0            # a model run, not the cache
    assert 0 < stats["p50Ms"] <= stats["p95Ms"] and stats["lastMs"] > 0
    assert 0 < stats["lastPrefillMs"] < stats["lastMs"]
    assert stats["acceptedPerStep"] >= 1.0 and 0 <= stats["cacheHitRate"] <= 1


@on_shared_loop
async def test_shown_and_accepted_telemetry(docs, shared):
    text = "def cube(x):\n    return x * x *"
    uri = docs.open("status_telemetry.py", text)
    item = (await docs.inline(uri, *end_of(text))).items[0]
    item_uri, item_id = item.command.arguments
    before = (await status(shared))["stats"]
    shared.protocol.notify("codeswift/completionShown", {"uri": item_uri, "id": item_id})
    shared.protocol.notify("codeswift/completionAccepted", {"uri": item_uri, "id": item_id, "acceptedChars": None})
    shared.protocol.notify("codeswift/completionAccepted", {"uri": item_uri, "id": item_id, "acceptedChars": 2})
    shared.protocol.notify("codeswift/completionAccepted", {"bad": "params"})      # ignored, not fatal
    after = (await status(shared))["stats"]
    assert after["shown"] == before["shown"] + 1
    assert after["accepted"] == before["accepted"] + 2
    assert after["acceptedChars"] == before["acceptedChars"] + len(item.insert_text) + 2
