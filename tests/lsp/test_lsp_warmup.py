"""Warm-up: opening a document (or editing in a new region) prefills the prompt there while the
editor is idle; a completion then reuses it, gets the same text, and cancels a warm-up in its way."""
import asyncio
import re
import threading
import time

import pytest
from lsprotocol import types

from lsp_testkit import (CONFIGURED_MAX_TOKENS as MAX_TOKENS, Docs, end_of, expected_text, lsp_client, server_command,
                         wait_for_state)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def text(tag: str, functions: int = 12) -> str:
    """A document whose prompt shares nothing but the FIM prefix token with other tests' prompts
    (the engine reuses prompt KV across documents too): every line names `tag`, whose first
    letter no other test text starts with."""
    body = "".join(f"def {tag}{i}(x):\n    return x + {i}\n\n" for i in range(functions))
    return f"{tag} = None\n{body}def main():\n    "


async def until(predicate, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (found := predicate()):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return found


def traces(client, uri: str, what: str) -> list[str]:
    return [m.message for m in client.log_messages if m.message.startswith(what) and f" {uri}" in m.message]


def warmed(client, uri: str) -> list[int]:
    """Prompt tokens cached by each finished warm-up of `uri`."""
    return [int(re.search(r"warm-up: (\d+) prompt tokens", m).group(1)) for m in traces(client, uri, "warm-up:")]


def reuse(message: str) -> tuple[int, int]:
    """(prompt tokens, reused) from the server's completion trace."""
    m = re.search(r": (\d+) prompt tokens \((\d+) reused\)", message)
    return int(m.group(1)), int(m.group(2))


async def complete(client, docs, uri, pos):
    """Ask at `pos`; the item texts and the completion's (prompt tokens, reused)."""
    done = len(traces(client, uri, "completion for"))
    result = await docs.inline(uri, *pos)
    last = await until(lambda: traces(client, uri, "completion for")[done:])
    return [i.insert_text for i in result.items], reuse(last[-1])


async def test_open_warms_the_prompt_and_completion_reuses_it_losslessly(configured, workspace, engine):
    docs = Docs(configured, workspace)
    doc = text("zulu")
    uri = docs.open("warm_open.py", doc)
    cached = (await until(lambda: warmed(configured, uri)))[0]
    items, (prompt, reused) = await complete(configured, docs, uri, end_of(doc))
    assert cached > 1 and reused == cached == prompt - 1       # all but the token the completion recomputes
    want = expected_text(engine, doc, "", uri, max_tokens=MAX_TOKENS)
    assert items == ([want] if want else [])


async def test_opening_a_long_document_warms_its_top(configured, workspace, engine):
    docs = Docs(configured, workspace)
    doc = text("oscar", 200)                                     # far over the prompt budget
    uri = docs.open("warm_long.py", doc)
    await until(lambda: warmed(configured, uri))
    head = doc[:doc.index("def oscar3(")]                        # the cursor near the top
    items, (prompt, reused) = await complete(configured, docs, uri, end_of(head))
    assert reused == 1 + len(engine.prompts.encode_lines(head))  # the FIM prefix token and every line above
    want = expected_text(engine, head, doc[len(head):], uri, max_tokens=MAX_TOKENS)
    assert items == ([want] if want else [])


async def test_an_edit_in_another_region_warms_there(configured, workspace, engine):
    docs = Docs(configured, workspace)
    doc = text("yankee")
    uri = docs.open("warm_region.py", doc)
    await until(lambda: warmed(configured, uri))
    docs.edit(uri, (35, 17), (35, 17), " * 2")                    # far below the top: a new region
    await until(lambda: len(warmed(configured, uri)) == 2)
    doc = doc.replace("return x + 11\n", "return x + 11 * 2\n", 1)
    items, (prompt, reused) = await complete(configured, docs, uri, (35, 21))
    assert reused == prompt - 1
    prefix, suffix = doc[:doc.index(" * 2") + 4], doc[doc.index(" * 2") + 4:]
    want = expected_text(engine, prefix, suffix, uri, max_tokens=MAX_TOKENS)
    assert items == ([want] if want else [])


async def test_cursor_notification_warms_where_the_cursor_rests(configured, workspace, engine):
    """`codeswift/cursor` (sent by the VS Code extension): the prompt at the cursor is prefilled
    before the user types, so the first completion there reuses all of it. Malformed ones are
    ignored and the server keeps serving."""
    docs = Docs(configured, workspace)
    doc = text("kilo", 200)                                       # far over the prompt budget
    uri = docs.open("warm_cursor.py", doc)
    await until(lambda: warmed(configured, uri))                  # the top, on open
    configured.protocol.notify("codeswift/cursor", {"textDocument": {"uri": uri}})            # no position
    configured.protocol.notify("codeswift/cursor", {"textDocument": {"uri": uri}, "position": {"line": -1, "character": 0}})
    cut = doc.index("def kilo150(")
    line = doc[:cut].count("\n")
    configured.protocol.notify("codeswift/cursor", {"textDocument": {"uri": uri},
                                                    "position": {"line": line, "character": 0}})
    await until(lambda: len(warmed(configured, uri)) == 2)
    items, (prompt, reused) = await complete(configured, docs, uri, (line, 0))
    assert reused == prompt - 1
    want = expected_text(engine, doc[:cut], doc[cut:], uri, max_tokens=MAX_TOKENS)
    assert items == ([want] if want else [])


async def test_a_completion_racing_a_warm_up_is_answered(configured, workspace, engine):
    """Whether the warm-up is pending, running or done when the request comes, the answer is exact."""
    docs = Docs(configured, workspace)
    for tag, delay in (("xray", 0.0), ("quebec", 0.29), ("victor", 0.31), ("whiskey", 0.35)):
        doc = text(tag, 80)                                      # a prompt of many warm-up chunks
        uri = docs.open(f"warm_race_{tag}.py", doc)
        await asyncio.sleep(delay)                               # around the 300 ms warm-up delay
        result = await asyncio.wait_for(docs.inline(uri, *end_of(doc)), 60)
        want = expected_text(engine, doc, "", uri, max_tokens=MAX_TOKENS)
        assert [i.insert_text for i in result.items] == ([want] if want else [])


async def test_warmup_false_warms_nothing(tiny_model, workspace):
    options = {"warmup": False, "warmupDelayMs": 0}
    cmd = server_command(tiny_model, "--debounce-ms", "0", "--no-index")
    async with lsp_client(cmd, init_options=options, root=workspace, trace=types.TraceValue.Verbose) as client:
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        docs = Docs(client, workspace)
        doc = text("uniform")
        uri = docs.open("warm_off.py", doc)
        # A warm-up (no delay) would now be queued on the engine thread ahead of this completion.
        _, (prompt, reused) = await complete(client, docs, uri, end_of(doc))
        assert reused <= 1 < prompt                              # at most the FIM prefix token
        assert warmed(client, uri) == []


# -- in-process: cancellation and supersession, with an engine whose chunks are slow ----------

class SlowEngine:
    """Warm-ups of 50 chunks of 10 ms that poll `is_cancelled` between chunks, like the backends."""

    def __init__(self):
        self.warms, self.running, self.overlap, self.stopped = [], 0, False, threading.Event()
        self.chunk_started = threading.Event()

    def warm(self, req):
        self.running += 1
        self.overlap |= self.running > 1
        self.warms.append(req)
        try:
            for done in range(50):
                if req.is_cancelled():
                    self.stopped.set()
                    return done
                self.chunk_started.set()
                time.sleep(0.01)
            return 50
        finally:
            self.running -= 1

    def complete(self, req):
        from codeswift.types import CompletionResult
        assert self.running == 0
        return CompletionResult(text=" done", tokens=[1], finish_reason="length", stats={})


def make_completer(**options):
    from lsp.completer import Completer
    from lsp.options import Options
    engine = SlowEngine()
    return Completer(Options(debounce_ms=0, warmup_delay_ms=0, **options), lambda: engine), engine


async def test_a_completion_stops_a_running_warm_up_within_one_chunk():
    from lsp.documents import Document
    completer, engine = make_completer()
    doc = Document("file:///warm_slow.py", "x = 1\ny =")
    completer.touched(doc, len(doc.text))
    await until(engine.chunk_started.is_set)
    t0 = time.perf_counter()
    found = await asyncio.wait_for(completer.complete(doc, len(doc.text)), 5)
    assert found.text == " done" and engine.stopped.is_set()
    assert time.perf_counter() - t0 < 0.25                     # one 10 ms chunk, not 50
    assert engine.warms[0].doc_id == doc.uri and engine.warms[0].prefix == doc.text
    completer.close()


async def test_a_newer_warm_up_supersedes_the_older_and_they_never_overlap():
    from lsp.documents import Document
    completer, engine = make_completer()
    a, b = Document("file:///warm_a.py", "a = 1\n"), Document("file:///warm_b.py", "b = 2\n")
    completer.touched(a, len(a.text))
    await until(engine.chunk_started.is_set)
    completer.touched(b, len(b.text))                          # another document: a new region
    await until(lambda: len(engine.warms) == 2 and engine.running == 0 and completer.warmups.pending is None)
    assert [r.doc_id for r in engine.warms] == [a.uri, b.uri]
    assert engine.stopped.is_set() and not engine.overlap
    completer.close()


async def test_warm_up_off_or_same_region_schedules_nothing():
    from lsp.documents import Document
    completer, _ = make_completer(warmup=False)
    doc = Document("file:///warm_none.py", "x = 1\n" * 40)
    completer.touched(doc, len(doc.text))
    assert completer.warmups.pending is None
    completer.close()

    completer, _ = make_completer()
    await completer.complete(doc, len(doc.text))
    completer.touched(doc, doc.offset_at(types.Position(line=35, character=0)))   # near the completion
    assert completer.warmups.pending is None
    completer.touched(doc, 0)                                                       # 40 lines away
    assert completer.warmups.pending is not None
    completer.close()


async def test_a_failing_warm_up_is_logged_and_completions_go_on(caplog):
    from lsp.documents import Document
    completer, engine = make_completer()
    engine.warm = lambda req: 1 / 0
    doc = Document("file:///warm_fails.py", "x = 1\ny =")
    completer.touched(doc, len(doc.text))
    await until(lambda: completer.warmups.pending is None)
    assert "warm-up of file:///warm_fails.py failed" in caplog.text
    assert (await completer.complete(doc, len(doc.text))).text == " done"
    completer.close()
