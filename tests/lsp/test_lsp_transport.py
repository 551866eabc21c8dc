"""Transports: stdio (the protocol keeps stdout to itself) and `--tcp HOST:PORT`."""
import asyncio
import socket
import subprocess
import sys

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_testkit import plain

on_shared_loop = pytest.mark.asyncio(loop_scope="session")


def test_stdio_protocol_stream_is_private():
    """Prints, native writes to fd 1 and fd 1 being pointed at /dev/null (llama-cpp-python does
    that while loading) reach stderr or nowhere, never the protocol stream."""
    code = ("import os, sys; from lsp.cli import _private_stdout; out = _private_stdout(); "
            "print('print noise'); os.write(1, b'native noise'); "
            "null = os.open(os.devnull, os.O_WRONLY); saved = os.dup(1); os.dup2(null, 1); "
            "out.write(b'PROTOCOL'); out.flush(); os.dup2(saved, 1)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"PROTOCOL"
    assert b"print noise" in proc.stderr and b"native noise" in proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@on_shared_loop
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


def test_a_codeswift_request_without_params_is_answered():
    """JSON-RPC lets a request leave `params` out (the VS Code client did for codeswift/status)."""
    from lsp.server import SERVER
    message = SERVER.protocol.structure_message({"jsonrpc": "2.0", "id": 7, "method": "codeswift/status"})
    assert type(message).__name__ == "JsonRPCRequestMessage" and message.params is None
