"""Helpers for the LSP tests: start `codeswift lsp` under pytest-lsp's client, expected texts."""
from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codeswift.ending import postprocess
from lsp.context import decide_stop, language_of

SHARED_MAX_TOKENS = 16                  # the shared server: no debounce, short completions
CONFIGURED_MAX_TOKENS = 64              # the configured server: options from the client
CONFIGURED_DEBOUNCE_MS = 300
EARLY_TEXT = "def half(x):\n    return x /"      # asked while the configured server loads
READY_TIMEOUT_S = 120


def expected_text(engine, prefix: str, suffix: str, uri: str, language_id: str = "python",
                  max_tokens: int = SHARED_MAX_TOKENS) -> str:
    """The suggestion text the server must return at this cursor."""
    from codeswift.types import CompletionRequest
    from lsp.completer import _path
    language = language_of(language_id, uri)
    mode = decide_stop(prefix, suffix, language)
    res = engine.complete(CompletionRequest(prefix=prefix, suffix=suffix, path=_path(uri), language=language,
                                            max_tokens=max_tokens, stop=mode, doc_id=uri))
    return postprocess(res.text, prefix, suffix, mode, language)


def server_command(model: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "codeswift.cli", "lsp", "--model", str(model), "--device", "cpu",
            "--dtype", "float32", *extra]


@contextlib.asynccontextmanager
async def lsp_client(command: list[str], init_options: dict | None = None, root: Path | None = None,
                     capabilities: str = "visual-studio-code", trace: types.TraceValue | None = None):
    """A started, initialized client talking to a `codeswift lsp` process."""
    client: LanguageClient = await ClientServerConfig(server_command=command).start()
    client.status_notifications = []
    client.feature("codeswift/status")(lambda params: client.status_notifications.append(plain(params)))
    client.feature(types.LOG_TRACE)(lambda params: client.log_messages.append(
        types.LogMessageParams(type=types.MessageType.Log, message=params.message)))
    try:
        client.init_result = await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities(capabilities),
            root_uri=root.as_uri() if root else None,
            initialization_options=init_options, trace=trace))
        yield client
        await asyncio.wait_for(client.shutdown_session(), 20)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()                   # pygls' stop() would wait for it forever
        await client.stop()


def plain(obj):
    """pygls' client hands custom results over as namedtuples; tests compare plain JSON."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


async def request(client: LanguageClient, method: str, params=None):
    """A custom request (docs/protocol.md), its result as plain JSON."""
    return plain(await client.protocol.send_request_async(method, params if params is not None else {}))


async def status(client: LanguageClient) -> dict:
    return await request(client, "codeswift/status")


async def wait_for_state(client: LanguageClient, *states: str, timeout: float = READY_TIMEOUT_S) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        st = await status(client)
        if st["state"] in states:
            return st
        if loop.time() > deadline:
            raise TimeoutError(f"server still {st['state']!r} ({st['message']}) after {timeout} s")
        await asyncio.sleep(0.1)


class Docs:
    """Open/edit helpers with per-document versions."""

    def __init__(self, client: LanguageClient, workspace: Path):
        self.client, self.workspace, self.versions = client, workspace, {}

    def open(self, name: str, text: str, language_id: str = "python") -> str:
        uri = (self.workspace / name).as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)))
        return uri

    def edit(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        self.versions[uri] += 1
        rng = types.Range(start=types.Position(*start), end=types.Position(*end))
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    async def inline(self, uri: str, line: int, character: int, **kw) -> types.InlineCompletionList:
        return await self.client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            **kw))


def end_of(text: str) -> tuple[int, int]:
    """(line, character) of the end of `text` (ASCII/BMP text: UTF-16 units = characters)."""
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])
