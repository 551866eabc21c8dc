"""codeswift/generate through a real client: partial results ($/progress on partialResultToken)
stream the text as tokens are accepted, the reply is the engine's exact text, $/cancelRequest
stops it, bad params get JSON-RPC errors and inline completions meanwhile answer at once."""
import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from codeswift.types import CompletionRequest
from lsp.completer import _path
from lsp_testkit import end_of, plain

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEXT = "import os\n\n\ndef walk(root):\n    "


def reports(client, token):
    """Partial results received on `token` (pytest-lsp's own $/progress handler knows only
    work-done progress, so it is wrapped once per client)."""
    if not hasattr(client, "partial_results"):
        client.partial_results = {}
        work_done = client.protocol.fm._features[types.PROGRESS]

        def progress(params):
            value = plain(params.value)
            if isinstance(value, dict) and "kind" not in value:
                client.partial_results.setdefault(params.token, []).append(value)
            else:
                work_done(params)
        client.protocol.fm._features[types.PROGRESS] = progress
    return client.partial_results.setdefault(token, [])


def gen_params(uri, pos, **kw):
    return {"textDocument": {"uri": uri}, "position": {"line": pos[0], "character": pos[1]}, **kw}


async def test_generate_streams_partial_results_and_replies_with_the_engines_text(docs, engine):
    uri = docs.open("generate_stream.py", TEXT)
    token = "gen-stream"
    pieces = reports(docs.client, token)
    got = plain(await docs.client.protocol.send_request_async(
        "codeswift/generate", gen_params(uri, end_of(TEXT), maxTokens=120, stop="none", partialResultToken=token)))
    want = engine.complete(CompletionRequest(prefix=TEXT, suffix="", path=_path(uri), language="python",
                                             max_tokens=120, stop="none", doc_id=uri))
    assert got["text"] == want.text and got["tokens"] == len(want.tokens)
    pieces = [r["text"] for r in pieces]
    assert "".join(pieces) == want.text
    assert len(pieces) > min(10, len(want.tokens) // 3), "the text was not streamed as tokens were accepted"


async def test_generate_with_penalty_is_the_penalised_engine_text(docs, engine):
    uri = docs.open("generate_penalty.py", TEXT)
    got = plain(await docs.client.protocol.send_request_async(
        "codeswift/generate", gen_params(uri, end_of(TEXT), maxTokens=40, stop="none", repetitionPenalty=1.5)))
    want = engine.complete(CompletionRequest(prefix=TEXT, suffix="", path=_path(uri), language="python",
                                             max_tokens=40, stop="none", doc_id=uri, repetition_penalty=1.5))
    assert got["text"] == want.text


async def test_cancel_stops_a_generation_and_inline_completions_answer_meanwhile(docs):
    uri = docs.open("generate_cancel.py", TEXT)
    token = "gen-cancel"
    pieces = reports(docs.client, token)
    fut = asyncio.ensure_future(docs.client.protocol.send_request_async(
        "codeswift/generate", gen_params(uri, end_of(TEXT), maxTokens=4000, stop="none", partialResultToken=token),
        msg_id="gen-cancel"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not pieces:
        assert loop.time() < deadline, "no partial result arrived"
        await asyncio.sleep(0.01)
    other = docs.open("generate_meanwhile.py", "x = 1\n")
    t0 = loop.time()
    meanwhile = await docs.inline(other, 1, 0)
    assert not meanwhile.items and loop.time() - t0 < 5, "an inline completion waited for the generation"
    docs.client.cancel_request(types.CancelParams(id="gen-cancel"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(fut, 30)
    # The engine is free again: an inline completion is answered by the model.
    after = await docs.inline(other, 1, 0)
    assert isinstance(after, types.InlineCompletionList)


@pytest.mark.parametrize("params, fragment", [
    ({}, "textDocument.uri and position are required"),
    ({"textDocument": {"uri": "file:///nowhere.py"}, "position": {"line": 0, "character": 0}}, "unknown document"),
    ({"maxTokens": 0}, "maxTokens must be an integer in 1..8192"),
    ({"maxTokens": "many"}, "maxTokens must be"),
    ({"stop": "word"}, "stop must be none, line or block"),
    ({"repetitionPenalty": 9}, "repetitionPenalty must be a number in 1..3"),
    ({"position": {"line": -1, "character": 0}}, "non-negative"),
    ({"position": {"line": 99, "character": 0}}, "line"),
])
async def test_bad_generate_params_are_invalid_params_errors(docs, params, fragment):
    uri = docs.open("generate_bad.py", TEXT)
    body = {**gen_params(uri, end_of(TEXT)), **params} if params else {}
    with pytest.raises(JsonRpcInvalidParams, match=fragment):
        await docs.client.protocol.send_request_async("codeswift/generate", body)
