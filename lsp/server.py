"""The codeswift language server: glue between LSP messages and the completer.

One small handler per LSP method. Standard: inline completion (LSP 3.18), completion,
incremental sync, `$/cancelRequest`, `$/progress`. Custom (docs/protocol.md):
`codeswift/completionShown`, `codeswift/completionAccepted`, `codeswift/status` (request and
notification), `codeswift/reindex`, `codeswift/cursor`, `codeswift/document`, `codeswift/generate`.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from typing import Any, Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from codeswift import __version__
from codeswift.errors import BadInputError, CancelledError, CodeswiftError
from codeswift.types import EngineInfo

from .completer import Completer, Suggestion
from .convert import completion_item, inline_item, plain, telemetry_id, workspace_root
from .documents import BadPosition, DocumentStore
from .host import Host
from .indexing import INDEX_DELAY_S, Indexing
from .options import Options, parse_options, unknown_keys
from .progress import RequestProgress
from .protocol import CodeswiftProtocol

log = logging.getLogger("codeswift.lsp")

STATUS = "codeswift/status"
DOCUMENT = "codeswift/document"
GENERATE = "codeswift/generate"
LOAD_WAIT_S = 300.0                  # an explicit generation waits this long for the model


class CodeswiftServer(LanguageServer):
    """Server state: options, open documents, the engine host, the completer (with its warm-ups,
    lsp/warmup.py) and the loading/indexing state machine (lsp/indexing.py)."""

    def __init__(self, defaults: Options | None = None):
        super().__init__("codeswift", __version__, protocol_cls=CodeswiftProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.defaults = defaults or Options()
        self.options = self.defaults
        self.documents = DocumentStore()
        self.host: Host | None = None
        self.completer: Completer | None = None
        self.state, self.message, self.index_progress = "loading", "waiting for initialize", None
        self.shown_items: "OrderedDict[str, str]" = OrderedDict()     # item id -> text
        self.indexing: Indexing | None = None
        self._tasks: set[asyncio.Task] = set()
        self._refused: set[str] = set()
        self.shut_down = False
        self.trace_message: Callable[[str], None] = lambda _message: None

    # -- setup -------------------------------------------------------------------------
    def configure(self, params: types.InitializeParams) -> None:
        """Parse options, remember the workspace; warn about bad option values."""
        raw = params.initialization_options
        self.options, warnings = parse_options(raw, self.defaults)
        for w in warnings:
            self.show(w, types.MessageType.Warning)
        if unknown_keys(raw):
            log.info("ignoring unknown initializationOptions: %s", ", ".join(unknown_keys(raw)))
        self.protocol.trace = params.trace or types.TraceValue.Off
        self.documents.encoding = self.workspace.position_encoding or types.PositionEncodingKind.Utf16
        self.host = Host(self.options, workspace_root(params))
        self.trace_message = self.trace_threadsafe()
        self.completer = Completer(self.options, lambda: self.host.engine, self.trace_message)
        self.indexing = Indexing(self, self.host, self.trace_message, self.completer.engine_ready,
                                 self.completer.worker)
        self.state, self.message = "loading", f"loading {self.host.info.model}"

    def start_loading(self) -> None:
        self.spawn(self.indexing.load())

    async def reindex(self) -> dict:
        if self.indexing is None:
            return {"ok": False, "message": "the model is not loaded yet"}
        return await self.indexing.reindex()

    # -- completions -------------------------------------------------------------------
    def cursor_at(self, uri: str, position: types.Position):
        """(document, offset) of a cursor; JSON-RPC errors for unknown documents and impossible
        positions."""
        doc = self.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri} (send textDocument/didOpen first)")
        try:
            return doc, doc.offset_at(position)
        except BadPosition as e:
            raise JsonRpcInvalidParams(str(e)) from None

    async def suggest(self, uri: str, position: types.Position,
                      token: types.ProgressToken | None) -> Suggestion | None:
        """The suggestion at a cursor; errors for unknown documents and impossible positions."""
        doc, offset = self.cursor_at(uri, position)
        if (why := doc.unusable_reason()) is not None:
            if uri not in self._refused:
                self._refused.add(uri)
                self.log_message(f"no completions for {uri}: {why}", types.MessageType.Warning)
            return None
        if self.completer is None:
            return None
        progress = RequestProgress(self, token)
        outcome = "cancelled"
        try:
            found = await self.completer.complete(doc, offset, on_start=progress.begin_threadsafe())
            outcome = "done"
        except BadInputError as e:
            raise JsonRpcInvalidParams(str(e)) from None
        except CodeswiftError as e:                 # e.g. the completion server is unreachable
            self.set_state("error", str(e))
            return None
        except Exception:
            log.exception("completion failed")
            return None
        finally:
            progress.end(outcome)
        if self.state == "error" and self.host is not None and self.host.ready:
            self.state, self.message = "ready", ""
        if found is not None:
            self.shown_items[found.id] = found.text
            while len(self.shown_items) > 256:
                self.shown_items.popitem(last=False)
        self.send_status()
        return found

    async def generate(self, params: dict) -> dict:
        """codeswift/generate: a long generation at a cursor, its text streamed as partial
        results (`$/progress` on `partialResultToken`, value {"text": piece}) as the engine
        accepts tokens; the reply holds the whole text. Waits for the model to load."""
        g = parse_generate(params)
        doc, offset = self.cursor_at(g.pop("uri"), g.pop("position"))
        if (why := doc.unusable_reason()) is not None:
            raise JsonRpcInvalidParams(f"no generation for {doc.uri}: {why}")
        waited = 0.0
        while self.completer is None or self.host is None or not self.host.ready:
            if self.state == "error" or waited >= LOAD_WAIT_S:
                raise JsonRpcInternalError(f"the model is not available ({self.state}: {self.message})")
            await asyncio.sleep(0.2)
            waited += 0.2
        token = g.pop("token")
        loop = asyncio.get_running_loop()

        def on_text(piece: str) -> None:                  # engine thread
            if token is not None:
                loop.call_soon_threadsafe(self.progress, types.ProgressParams(token=token, value={"text": piece}))
        try:
            result = await self.completer.generate(doc, offset, on_text, **g)
        except BadInputError as e:
            raise JsonRpcInvalidParams(str(e)) from None
        except CancelledError:
            raise JsonRpcRequestCancelled("generation cancelled") from None
        except CodeswiftError as e:
            raise JsonRpcInternalError(str(e)) from None
        st = result.stats or {}
        return {"text": result.text, "finishReason": result.finish_reason, "tokens": len(result.tokens),
                "stats": {k: st.get(k) for k in ("steps", "accepted_per_step", "prefill_ms", "decode_ms")}}

    # -- status and messages -----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        info = self.host.info if self.host else EngineInfo(self.options.model)
        stats = self.completer.stats.to_json() if self.completer else {}
        return {"state": self.state, "message": self.message, "model": info.model, "device": info.device,
                "dtype": info.dtype, "backend": info.backend, "indexProgress": self.index_progress,
                "corpus": self.indexing.corpus_note if self.indexing else "", "stats": stats}

    def set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        log.info("state %s: %s", state, message)
        self.send_status()

    def send_status(self) -> None:
        self.protocol.notify(STATUS, self.status())

    def show(self, message: str, kind: types.MessageType) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_message(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.info("%s", message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def trace_threadsafe(self) -> Callable[[str], None]:
        """`$/logTrace` (when the client turned tracing on), callable from any thread."""
        loop = asyncio.get_running_loop()

        def trace(message: str) -> None:
            log.debug("%s", message)
            if self.protocol.trace != types.TraceValue.Off:
                loop.call_soon_threadsafe(self.log_trace, types.LogTraceParams(message=message))
        return trace

    def index_later(self, uri: str, delay: float = INDEX_DELAY_S) -> None:
        if self.indexing is not None:
            self.indexing.update_later(uri, delay)

    def report_server_error(self, error: Exception, source) -> None:
        """Errors outside any request (a malformed notification, ...): log, never pop up."""
        log.error("%s: %s", getattr(source, "__name__", source), error)
        try:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error,
                                                           message=f"codeswift: {error}"))
        except Exception:
            pass

    def forget(self, uri: str) -> None:
        """A closed document: drop its cached completions and pending request."""
        self._refused.discard(uri)
        if self.completer is not None:
            self.completer.forget(uri)

    # -- tasks ---------------------------------------------------------------------------
    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        if self.completer is not None:
            self.completer.close()
        if self.indexing is not None:
            self.indexing.close()


SERVER = CodeswiftServer()


# -- lifecycle ------------------------------------------------------------------------------

@SERVER.feature(types.INITIALIZE)
def initialize(ls: CodeswiftServer, params: types.InitializeParams) -> None:
    """Read initializationOptions (typed, with defaults)."""
    ls.configure(params)


@SERVER.feature(types.INITIALIZED)
def initialized(ls: CodeswiftServer, params: types.InitializedParams) -> None:
    """Load the model and index the workspace in the background."""
    ls.start_loading()


@SERVER.feature(types.SHUTDOWN)
def shutdown(ls: CodeswiftServer, params: None) -> None:
    ls.close()
    ls.shut_down = True


@SERVER.feature(types.EXIT)
def exit_(ls: CodeswiftServer, params: None) -> None:
    """Exit now (0 after shutdown, else 1), without waiting for worker threads or stdin."""
    ls.close()
    logging.shutdown()
    os._exit(0 if ls.shut_down else 1)


# -- documents ------------------------------------------------------------------------------

@SERVER.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CodeswiftServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = ls.documents.open(params.text_document)
    if ls.completer is not None:
        ls.completer.touched(doc, None)
    ls.index_later(params.text_document.uri)


@SERVER.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CodeswiftServer, params: types.DidChangeTextDocumentParams) -> None:
    if (doc := ls.documents.change(params)) is None:
        log.warning("didChange for unknown document %s", params.text_document.uri)
        return
    if ls.completer is not None:
        ls.completer.touched(doc, doc.last_edit)
    ls.index_later(params.text_document.uri)


@SERVER.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
def did_save(ls: CodeswiftServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.index_later(params.text_document.uri, delay=0)


@SERVER.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CodeswiftServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.documents.close(uri)
    ls.forget(uri)
    ls.index_later(uri, delay=0)


# -- completions ----------------------------------------------------------------------------

@SERVER.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: CodeswiftServer, params: types.InlineCompletionParams
                            ) -> types.InlineCompletionList:
    """Ghost text at the cursor: one item, an empty range at the cursor."""
    uri = params.text_document.uri
    found = await ls.suggest(uri, params.position, params.work_done_token)
    if found is None:
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[inline_item(found, uri, params.position)])


@SERVER.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
async def completion(ls: CodeswiftServer, params: types.CompletionParams) -> types.CompletionList:
    """The same suggestion as one completion item, for editors without inline completion."""
    found = await ls.suggest(params.text_document.uri, params.position, params.work_done_token)
    items = [completion_item(found, params.position)] if found is not None else []
    return types.CompletionList(is_incomplete=True, items=items)


# -- codeswift/* (docs/protocol.md) ---------------------------------------------------------

@SERVER.feature("codeswift/completionShown")
def completion_shown(ls: CodeswiftServer, params: Any) -> None:
    """Telemetry: the client displayed item `id`."""
    if ls.completer is not None and telemetry_id(plain(params)) is not None:
        ls.completer.stats.shown += 1


@SERVER.feature("codeswift/completionAccepted")
def completion_accepted(ls: CodeswiftServer, params: Any) -> None:
    """Telemetry: the user accepted item `id` (all of it, or `acceptedChars`)."""
    params = plain(params)
    item = telemetry_id(params)
    if ls.completer is None or item is None:
        return
    chars = params.get("acceptedChars")
    if not isinstance(chars, int) or isinstance(chars, bool) or chars < 0:
        chars = len(ls.shown_items.get(item, ""))
    ls.completer.stats.accepted += 1
    ls.completer.stats.accepted_chars += chars
    ls.send_status()


@SERVER.feature("codeswift/cursor")
def cursor(ls: CodeswiftServer, params: Any) -> None:
    """The cursor moved to `position` in `textDocument` (LSP has no such notification; clients
    that can send it let the server prefill the prompt there before the user types)."""
    p = plain(params)
    try:
        uri = p["textDocument"]["uri"]
        pos = types.Position(line=int(p["position"]["line"]), character=int(p["position"]["character"]))
        if pos.line < 0 or pos.character < 0:
            raise ValueError("negative position")
    except (KeyError, TypeError, ValueError) as e:
        log.warning("ignoring malformed codeswift/cursor %r: %s", p, e)
        return
    doc = ls.documents.get(uri)
    if doc is None or ls.completer is None:
        return
    ls.completer.touched(doc, doc._clamped_offset(pos))


@SERVER.feature(GENERATE)
async def generate(ls: CodeswiftServer, params: Any) -> dict:
    """Long generation (whole functions, the rest of a file), streamed; cancellable."""
    return await ls.generate(plain(params))


def parse_generate(p: Any) -> dict:
    """codeswift/generate params -> Completer.generate arguments (docs/protocol.md)."""
    from codeswift.types import MAX_TOKENS
    if not isinstance(p, dict):
        raise JsonRpcInvalidParams("codeswift/generate: params must be an object")
    try:
        uri = p["textDocument"]["uri"]
        line, character = p["position"]["line"], p["position"]["character"]
    except (KeyError, TypeError) as e:
        raise JsonRpcInvalidParams(f"codeswift/generate: textDocument.uri and position are required ({e})") from None
    if not isinstance(uri, str) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 31
                                           for v in (line, character)):
        raise JsonRpcInvalidParams("codeswift/generate: uri must be a string, position non-negative integers")
    position = types.Position(line=line, character=character)

    def field(name, kind, default, ok, what):
        v = p.get(name, default)
        if v is None:
            v = default
        if not isinstance(v, kind) or isinstance(v, bool) or not ok(v):
            raise JsonRpcInvalidParams(f"codeswift/generate: {name} must be {what}, got {v!r}")
        return v
    token = p.get("partialResultToken")
    if token is not None and (not isinstance(token, (str, int)) or isinstance(token, bool)):
        raise JsonRpcInvalidParams("codeswift/generate: partialResultToken must be a string or an integer")
    return {"uri": uri, "position": position, "token": token,
            "max_tokens": field("maxTokens", int, 512, lambda v: 1 <= v <= MAX_TOKENS, f"an integer in 1..{MAX_TOKENS}"),
            "stop": field("stop", str, "block", lambda v: v in ("none", "line", "block"), "none, line or block"),
            "repetition_penalty": float(field("repetitionPenalty", (int, float), 1.0, lambda v: 1 <= v <= 3,
                                              "a number in 1..3 (1: off)")),
            "penalty_window": field("penaltyWindow", int, 0, lambda v: 0 <= v <= 65536, "an integer in 0..65536")}


@SERVER.feature(STATUS)
def status(ls: CodeswiftServer, params: Any) -> dict:
    """State, model facts and rolling statistics."""
    return ls.status()


@SERVER.feature("codeswift/reindex")
async def reindex(ls: CodeswiftServer, params: Any) -> dict:
    """Re-walk the workspace and update the repository index."""
    return await ls.reindex()


@SERVER.feature(DOCUMENT)
def document(ls: CodeswiftServer, params: Any) -> dict | None:
    """The server's mirror of an open document (what completions see), or null when not open."""
    p = plain(params)
    uri = p.get("uri") if isinstance(p, dict) else None
    doc = ls.documents.get(uri) if isinstance(uri, str) else None
    if doc is None:
        return None
    return {"uri": doc.uri, "version": doc.version, "text": doc.text}
