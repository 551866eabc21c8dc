"""Bad input gets an error reply or an empty result, and the server keeps serving."""
import asyncio
import uuid
from concurrent.futures import Future

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound

from lsp_testkit import end_of, expected_text, status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def raw_request(client, method: str, params):
    """Send a request exactly as given (no client-side typing) and await its reply."""
    msg_id = f"raw-{uuid.uuid4()}"
    fut: Future = Future()
    client.protocol._request_futures[msg_id] = fut
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(fut), 30)


def inline_params(uri, line, character):
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}}


async def still_serving(docs, engine):
    text = "def alive():\n    return"
    uri = docs.open(f"alive_{uuid.uuid4().hex[:6]}.py", text)
    result = await docs.inline(uri, *end_of(text))
    assert [i.insert_text for i in result.items] == [expected_text(engine, text, "", uri)]


async def test_unknown_document_is_an_invalid_params_error(docs, engine):
    with pytest.raises(JsonRpcInvalidParams, match="unknown document"):
        await docs.inline("file:///nowhere/never_opened.py", 0, 0)


async def test_position_outside_the_document_is_an_error(docs, engine):
    uri = docs.open("bad_position.py", "x = 1\ny = 2\n")
    with pytest.raises(JsonRpcInvalidParams, match="outside"):
        await docs.inline(uri, 7, 0)
    result = await docs.inline(uri, 1, 999)              # past the end of a line: its end (LSP rule)
    assert [i.insert_text for i in result.items] == [i for i in [expected_text(engine, "x = 1\ny = 2", "\n", uri)] if i]


async def test_malformed_params_get_an_error_reply(shared, docs, engine):
    uri = docs.open("bad_params.py", "x = 1\n")
    for params in ({"textDocument": {"uri": uri}},                                  # no position
                   inline_params(uri, -1, 0),                                        # negative line
                   {"textDocument": "not an object", "position": [1, 2]},
                   None):
        with pytest.raises(JsonRpcException) as err:
            await raw_request(shared, types.TEXT_DOCUMENT_INLINE_COMPLETION, params)
        assert err.value.code == JsonRpcInvalidParams.CODE, params
    with pytest.raises(JsonRpcMethodNotFound):
        await raw_request(shared, "codeswift/noSuchMethod", {})
    await still_serving(docs, engine)


async def test_garbage_frames_and_notifications_do_not_kill_the_server(shared, docs, engine):
    body = b"{not json"
    shared.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    shared.protocol._send_data({"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE,
                                "params": {"textDocument": 5}})
    shared.protocol._send_data({"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE,
                                "params": {"textDocument": {"uri": "file:///unknown.py", "version": 2},
                                           "contentChanges": [{"text": "x"}]}})
    await still_serving(docs, engine)


async def test_binary_document_gets_an_empty_result(docs, engine):
    uri = docs.open("binary.bin", "\x7fELF\x00\x00\x01garbage\x00", language_id="plaintext")
    result = await docs.inline(uri, 0, 5)
    assert len(result.items) == 0
    await still_serving(docs, engine)


async def test_ten_megabyte_document_gets_an_empty_result(shared, docs, engine):
    line = "value = compute(1, 2, 3)  # " + "x" * 70 + "\n"
    text = line * (10 * 1024 * 1024 // len(line))
    uri = docs.open("huge.py", text)
    result = await docs.inline(uri, *end_of(text))
    assert len(result.items) == 0
    docs.edit(uri, (0, 0), (0, 0), "import os\n")                # edits to it still apply
    assert len((await docs.inline(uri, 0, 9)).items) == 0
    shared.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert (await status(shared))["state"] == "ready"
    await still_serving(docs, engine)


async def test_lone_surrogates_do_not_crash(docs, engine):
    uri = docs.open("surrogate.py", "s = '\ud800'\nt =")
    result = await docs.inline(uri, 1, 3)
    assert isinstance(result.items, (list, tuple))
    await still_serving(docs, engine)
