"""`serverUrl`: the LSP server completes through a `codeswift serve` instance (the HTTP service,
run here in a thread around the tiny engine) with a bearer token."""

import pytest
import pytest_asyncio
from lsprotocol import types

from codeswift.testing import serve_app as serve
from lsp_testkit import Docs, end_of, expected_text, lsp_client, server_command, status, wait_for_state

service_app = pytest.importorskip(
    "service.app", reason="the HTTP service (service/, `codeswift serve`) is not installed")
pytest.importorskip("uvicorn", reason="uvicorn is needed to run the HTTP service")

on_shared_loop = pytest.mark.asyncio(loop_scope="session")

TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def service_url(engine):
    app = service_app.create_app(engine, service_app.ServiceConfig(token=TOKEN, model_name="tiny-qwen2"))
    with serve(app) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def remote(service_url, workspace):
    # No model on the LSP side: the CLI's --model is never loaded in serverUrl mode.
    cmd = server_command("/nonexistent/model", "--debounce-ms", "0", "--max-tokens", "16")
    options = {"serverUrl": service_url, "serverToken": TOKEN}
    async with lsp_client(cmd, init_options=options, root=workspace) as client:
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        yield client


@on_shared_loop
async def test_status_names_the_remote_model(remote):
    st = await status(remote)
    assert st["backend"] == "remote" and st["model"] == "tiny-qwen2"


@on_shared_loop
async def test_inline_completion_through_the_service(remote, workspace, engine):
    docs = Docs(remote, workspace)
    text = "def read(path):\n    with open(path) as f:\n        return f.re"
    uri = docs.open("remote_mean.py", text)
    result = await docs.inline(uri, *end_of(text))
    want = expected_text(engine, text, "", uri)
    assert want
    assert [i.insert_text for i in result.items] == [want]
    cursor = types.Position(*end_of(text))
    assert result.items[0].range == types.Range(start=cursor, end=cursor)


def test_remote_engine_reports_a_bad_token(service_url):
    from codeswift.errors import CodeswiftError
    from codeswift.types import CompletionRequest
    from lsp.remote import RemoteEngine
    with pytest.raises(CodeswiftError, match="serverToken"):
        RemoteEngine(service_url, token="wrong").complete(CompletionRequest(prefix="x = "))
    res = RemoteEngine(service_url, token=TOKEN).complete(CompletionRequest(prefix="x = ", max_tokens=4))
    assert len(res.tokens) <= 4 and res.finish_reason in ("eos", "length", "stop")


def test_remote_engine_reports_an_unreachable_server():
    from codeswift.errors import CodeswiftError
    from lsp.remote import RemoteEngine
    with pytest.raises(CodeswiftError, match="cannot reach"):
        RemoteEngine("http://127.0.0.1:9").health()


@on_shared_loop
async def test_generate_streams_through_the_server(remote, workspace, engine):
    """codeswift/generate in serverUrl mode: the HTTP stream's pieces become partial results."""
    from codeswift.types import CompletionRequest
    from lsp.completer import _path
    from lsp_testkit import plain
    from test_lsp_generate import gen_params, reports
    docs = Docs(remote, workspace)
    text = "def walk(root):\n    "
    uri = docs.open("remote_generate.py", text)
    pieces = reports(remote, "remote-gen")
    got = plain(await remote.protocol.send_request_async(
        "codeswift/generate", gen_params(uri, end_of(text), maxTokens=60, stop="none", partialResultToken="remote-gen")))
    want = engine.complete(CompletionRequest(prefix=text, suffix="", path=_path(uri), language="python",
                                             max_tokens=60, stop="none", doc_id=uri))
    assert got["text"] == want.text and "".join(p["text"] for p in pieces) == want.text
    assert len(pieces) > 1
