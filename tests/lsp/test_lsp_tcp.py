"""`codeswift lsp --tcp HOST:PORT`: the same server over a TCP socket."""
import asyncio
import socket
import subprocess
import sys

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_testkit import plain

pytestmark = pytest.mark.asyncio(loop_scope="session")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_server_answers_initialize_and_status(workspace):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "codeswift.cli", "lsp", "--tcp", f"127.0.0.1:{port}",
                             "--model", "/nonexistent/model", "--no-index"], stderr=subprocess.DEVNULL)
    client = LanguageClient("tcp-test", "1")
    try:
        for _ in range(300):                          # the server imports, then listens
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("server did not listen")
        result = await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=workspace.as_uri()))
        assert result.capabilities.inline_completion_provider is not None
        client.initialized(types.InitializedParams())
        st = plain(await client.protocol.send_request_async("codeswift/status", {}))
        assert st["state"] in ("loading", "error")
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await client.stop()
