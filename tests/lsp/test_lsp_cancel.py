"""Latency control on the `configured` server (300 ms debounce, 64 tokens, tracing on): only the
newest request per document runs, $/cancelRequest stops generation within one decoding step."""
import asyncio
import re

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from lsp_testkit import CONFIGURED_MAX_TOKENS as MAX_TOKENS, end_of, expected_text, status

pytestmark = pytest.mark.asyncio(loop_scope="session")

LONG = "def long_running(a, b):\n    "           # the tiny model writes 64 tokens here without stopping
SHORT = "for i in range(10):\n    "               # ... and stops early here


def open_doc(client, workspace, name, text):
    uri = (workspace / name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


def request(client, uri, pos, msg_id=None, token=None):
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(*pos),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        work_done_token=token)
    # pytest-lsp's send_request_async is a coroutine: make it a task so the request goes out now.
    return asyncio.ensure_future(
        client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))


async def until(predicate, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_cancel_during_debounce_answers_request_cancelled(configured, workspace):
    uri = open_doc(configured, workspace, "cancel_debounce.py", LONG)
    before = (await status(configured))["stats"]["completions"]
    fut = request(configured, uri, end_of(LONG), msg_id="cancel-debounce")
    await asyncio.sleep(0.05)
    configured.cancel_request(types.CancelParams(id="cancel-debounce"))
    with pytest.raises(JsonRpcRequestCancelled):
        await fut
    assert (await status(configured))["stats"]["completions"] == before


async def test_only_the_newest_request_per_document_runs(configured, workspace, engine):
    text = LONG + "pass\n\n" + SHORT
    uri = open_doc(configured, workspace, "cancel_newest.py", text)
    older = request(configured, uri, (1, 4))                     # still waiting out the debounce when ...
    newer = request(configured, uri, end_of(text))               # ... this one arrives
    old, new = await asyncio.gather(older, newer)
    assert len(old.items) == 0
    want = expected_text(engine, text, "", uri, max_tokens=MAX_TOKENS)
    assert [i.insert_text for i in new.items] == ([want] if want else [])


async def test_cancel_stops_generation_within_one_step(configured, workspace, engine):
    from codeswift.types import CompletionRequest
    full = engine.complete(CompletionRequest(prefix=LONG, stop="block", max_tokens=MAX_TOKENS))
    assert full.finish_reason == "length" and full.stats["steps"] > 8, "precondition: a long generation"

    uri = open_doc(configured, workspace, "cancel_running.py", LONG)
    token = "cancel-running-progress"
    configured.progress_reports[token] = []
    fut = request(configured, uri, end_of(LONG), msg_id="cancel-running", token=token)
    # The server reports `begin` from the engine's first between-steps check: generation is running.
    await until(lambda: configured.progress_reports[token])
    assert isinstance(configured.progress_reports[token][0], types.WorkDoneProgressBegin)
    configured.cancel_request(types.CancelParams(id="cancel-running"))
    with pytest.raises(JsonRpcRequestCancelled):
        await fut

    def stopped():
        return [m.message for m in configured.log_messages if "cancelled after" in m.message and uri in m.message]
    await until(stopped)
    steps = int(re.search(r"cancelled after (\d+) decoding steps", stopped()[0]).group(1))
    assert steps < full.stats["steps"]                     # it did not run to the end
    assert isinstance(configured.progress_reports[token][-1], types.WorkDoneProgressEnd)

    # The engine is free again at once: the next completion is exact.
    other = open_doc(configured, workspace, "cancel_after.py", SHORT)
    result = await request(configured, other, end_of(SHORT))
    want = expected_text(engine, SHORT, "", other, max_tokens=MAX_TOKENS)
    assert [i.insert_text for i in result.items] == ([want] if want else [])


async def test_superseded_generation_stops_at_the_next_step():
    """In-process, with an engine whose steps are slow: the newer request's arrival stops the
    older generation at its next between-steps check, and the older request returns nothing."""
    import threading
    import time

    from codeswift.errors import CancelledError
    from codeswift.types import CompletionResult
    from lsp.completer import Completer
    from lsp.documents import Document
    from lsp.options import Options

    class SlowEngine:
        def __init__(self):
            self.step, self.stopped_after, self.running = 0, None, threading.Event()

        def complete(self, req):
            self.step = 0
            while self.step < 30:                       # like the engine loop: check, then step
                if req.is_cancelled():
                    self.stopped_after = self.step
                    raise CancelledError("cancelled")
                self.running.set()
                time.sleep(0.01)
                self.step += 1
            return CompletionResult(text=" done", tokens=[1], finish_reason="length", stats={})

    engine = SlowEngine()
    completer = Completer(Options(debounce_ms=0), lambda: engine)
    doc = Document("file:///slow.py", "x = 1\ny =")
    older = asyncio.ensure_future(completer.complete(doc, 10))
    await until(engine.running.is_set)
    newer = asyncio.ensure_future(completer.complete(doc, 10))
    await asyncio.sleep(0)                              # the newer request cancels the older one ...
    at_cancel = engine.step
    assert await older is None
    await until(lambda: engine.stopped_after is not None)
    assert engine.stopped_after <= at_cancel + 1         # ... which stops within one step
    assert (await newer).text == " done"
    completer.close()
