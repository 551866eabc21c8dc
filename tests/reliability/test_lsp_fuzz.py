"""LSP fuzzing: random incremental edits (CRLF, lone CR, emoji whose UTF-16 surrogate pairs the
positions split, ranges past the end, reversed, stale versions), interleaved with completions,
cancels and malformed requests, through the real client and server. Every request gets a
reply or a JSON-RPC error, the server's mirror (`codeswift/document`) always equals a
reference that applies the edits on UTF-16 code units, and the server keeps serving."""
import asyncio
import random
import uuid
from concurrent.futures import Future

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled

from lsp.documents import Document
from lsp_testkit import Docs, end_of, expected_text, plain, request
from reliability_kit import record, scale

on_session_loop = pytest.mark.asyncio(loop_scope="session")
ALPHABET = ["a", "b", " ", "\t", "\n", "\r\n", "\r", "é", "😀", "𝔘", "{", "}", "(", ")", "x = 1"]


# -- the reference: UTF-16 code units, as an editor counts them -------------------------------
def units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]


def from_units(u: list[int]) -> str:
    return b"".join(x.to_bytes(2, "little") for x in u).decode("utf-16-le", "surrogatepass")


def unit_offset(u: list[int], line: int, character: int) -> int:
    """Offset in units of an edit position: clamped to the document and to its line; inside a
    surrogate pair it means after the pair (a Python text has no half characters)."""
    starts, i = [0], 0
    while i < len(u):
        if u[i] == 13 and i + 1 < len(u) and u[i + 1] == 10:
            i += 2
            starts.append(i)
            continue
        i += 1
        if u[i - 1] in (10, 13):
            starts.append(i)
    if line >= len(starts):
        return len(u)
    end = starts[line + 1] if line + 1 < len(starts) else len(u)
    while end > starts[line] and u[end - 1] in (10, 13):
        end -= 1
    off = min(starts[line] + character, end)
    if 0 < off < len(u) and 0xDC00 <= u[off] <= 0xDFFF and 0xD800 <= u[off - 1] <= 0xDBFF:
        off += 1
    return off


def reference_apply(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
    u = units(text)
    a = unit_offset(u, *start)
    b = max(a, unit_offset(u, *end))
    return from_units(u[:a] + units(new) + u[b:])


def change(start, end, text):
    rng = types.Range(start=types.Position(*start), end=types.Position(*end))
    return types.TextDocumentContentChangePartial(range=rng, text=text)


# -- pure: the mirror against the reference, many edits ----------------------------------------
texts = st.lists(st.sampled_from(ALPHABET), max_size=12).map("".join)
coords = st.one_of(st.integers(0, 6), st.sampled_from([2**31 - 1, 1000]))
edits = st.lists(st.tuples(st.tuples(coords, coords), st.tuples(coords, coords), texts), max_size=25)


@settings(max_examples=scale("MIRROR_EXAMPLES", 300), deadline=None, derandomize=True)
@given(initial=texts, script=edits)
def test_the_mirror_applies_edits_like_utf16_editors(initial, script):
    doc, want = Document("file:///fuzz.py", initial), initial
    for start, end, new in script:
        doc.apply(change(start, end, new))
        want = reference_apply(want, start, end, new)
        assert doc.text == want
        for line in range(len(doc.line_starts())):         # every line start maps back to itself
            assert doc.position_at(doc.offset_at(types.Position(line, 0))) == types.Position(line, 0)


# -- through the real server ---------------------------------------------------------------------
async def raw_request(client, method: str, params, timeout: float = 30):
    msg_id = f"raw-{uuid.uuid4()}"
    fut: Future = Future()
    client.protocol._request_futures[msg_id] = fut
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)


def raw_notify(client, method: str, params) -> None:
    client.protocol._send_data({"jsonrpc": "2.0", "method": method, "params": params})


def garbage(rng: random.Random, uri: str):
    """A request that no server should take, or one for a place that does not exist."""
    pos = {"line": rng.choice([-1, 2**31, "one", None]), "character": rng.choice([-5, "x", 2**40, None])}
    return rng.choice([
        (types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": uri}, "position": pos,
                                                 "context": {"triggerKind": 1}}),
        (types.TEXT_DOCUMENT_COMPLETION, {"textDocument": {"uri": uri}, "position": pos}),
        (types.TEXT_DOCUMENT_COMPLETION, {"textDocument": {"uri": "file:///never/opened.py"},
                                          "position": {"line": 0, "character": 0}}),
        (types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": 7, "position": [1, 2]}),
        (types.TEXT_DOCUMENT_INLINE_COMPLETION, None),
        ("codeswift/noSuchMethod", {"x": "\ud800"}),
    ])


def bad_notification(rng: random.Random, uri: str, version: int):
    """Notifications that do not match the schema: the server must drop them whole."""
    return rng.choice([
        (types.TEXT_DOCUMENT_DID_CHANGE, {"textDocument": {"uri": uri, "version": version},
                                          "contentChanges": [{"range": {"start": {"line": -1, "character": 0},
                                                                        "end": {"line": 0, "character": 0}},
                                                              "text": "NEG"}]}),
        (types.TEXT_DOCUMENT_DID_CHANGE, {"textDocument": {"uri": uri}, "contentChanges": "nope"}),
        (types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {"uri": uri}}),
        ("codeswift/cursor", {"textDocument": {"uri": uri}, "position": {"line": "x"}}),
        ("$/unknownNotification", {"a": 1}),
    ])


async def mirror(client, uri: str) -> str:
    return (await request(client, "codeswift/document", {"uri": uri}))["text"]


@on_session_loop
async def test_random_sessions_keep_the_mirror_and_every_reply(lsp, workspace, engine):
    rng = random.Random(17)
    docs = Docs(lsp, workspace)
    sent = {"edits": 0, "completions": 0, "cancels": 0, "garbage": 0, "bad_notifications": 0}
    sessions = scale("LSP_SESSIONS", 6)
    for session in range(sessions):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 30)))
        uri = docs.open(f"fuzz_{session}.py", text)
        want, pending = text, []
        for step in range(40):
            roll = rng.random()
            if roll < 0.45:
                lines = want.count("\n") + want.count("\r") + 1
                start = (rng.choice([rng.randrange(lines + 2), 2**31 - 1]), rng.randrange(12))
                end = rng.choice([start, (min(start[0] + rng.randrange(2), 2**31 - 1), rng.randrange(12)), (0, 0)])
                new = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(4)))
                if rng.random() < 0.1:
                    docs.versions[uri] -= 2                # a stale version: the mirror still follows
                docs.edit(uri, start, end, new)
                want = reference_apply(want, start, end, new)
                sent["edits"] += 1
            elif roll < 0.75:
                line = rng.randrange(want.count("\n") + want.count("\r") + 2)
                msg_id = f"fuzz-{session}-{step}"
                method = rng.choice([types.TEXT_DOCUMENT_INLINE_COMPLETION, types.TEXT_DOCUMENT_COMPLETION])
                fut = asyncio.ensure_future(lsp.protocol.send_request_async(
                    method, _params(method, uri, line, rng.randrange(20)), msg_id=msg_id))
                pending.append(fut)
                sent["completions"] += 1
                if rng.random() < 0.4:
                    await asyncio.sleep(0)
                    lsp.cancel_request(types.CancelParams(id=msg_id))
                    sent["cancels"] += 1
            elif roll < 0.9:
                method, params = garbage(rng, uri)
                with pytest.raises(JsonRpcException):
                    await raw_request(lsp, method, params)
                # Custom requests take anything as params: a reply, never a hang.
                assert plain(await raw_request(lsp, "codeswift/status", rng.choice([[1, 2], "x", None, 5])))["state"]
                assert await raw_request(lsp, "codeswift/document", rng.choice([{"uri": 42}, [], None])) is None
                sent["garbage"] += 3
            else:
                raw_notify(lsp, *bad_notification(rng, uri, docs.versions[uri]))
                sent["bad_notifications"] += 1
            if step % 10 == 9:
                assert await mirror(lsp, uri) == want, (session, step)
        for outcome in await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 120):
            assert not isinstance(outcome, Exception) or isinstance(
                outcome, (JsonRpcRequestCancelled, JsonRpcInvalidParams)), outcome
        assert await mirror(lsp, uri) == want
        lsp.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))
        assert await request(lsp, "codeswift/document", {"uri": uri}) is None
    text = "def alive():\n    return"
    uri = docs.open("fuzz_alive.py", text)
    result = await docs.inline(uri, *end_of(text))
    assert [i.insert_text for i in result.items] == [t for t in [expected_text(engine, text, "", uri, max_tokens=8)] if t]
    record("lsp_fuzz", sessions=sessions, messages=sum(sent.values()), **sent)


def _params(method: str, uri: str, line: int, character: int):
    doc, pos = types.TextDocumentIdentifier(uri=uri), types.Position(line, character)
    if method == types.TEXT_DOCUMENT_COMPLETION:
        return types.CompletionParams(text_document=doc, position=pos)
    return types.InlineCompletionParams(text_document=doc, position=pos, context=types.InlineCompletionContext(
        trigger_kind=types.InlineCompletionTriggerKind.Invoked))


@on_session_loop
async def test_a_lone_surrogate_document_gets_an_empty_answer_not_a_crash(lsp, workspace):
    docs = Docs(lsp, workspace)
    uri = f"file://{workspace}/surrogate.py"
    raw_notify(lsp, types.TEXT_DOCUMENT_DID_OPEN, {"textDocument": {"uri": uri, "languageId": "python",
                                                                    "version": 1, "text": "x = '\ud800'\n"}})
    result = await docs.inline(uri, 0, 4)
    assert list(result.items) == []
    assert await mirror(lsp, uri) == "x = '\ud800'\n"
