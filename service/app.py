"""The HTTP service: one engine shared by many editors, behind three completion dialects.

Routes are glue: parse the dialect (schemas), convert (convert), run through the queue
(scheduler), convert back. Every error leaves as {"error": {"message", "type"}}.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException

from codeswift.ending import Cut, PostRules, apply_rules
from codeswift.errors import BadInputError, CancelledError, CodeswiftError
from codeswift.streaming import RuleStream
from codeswift.types import CompletionRequest, CompletionResult

from . import convert
from .guard import Guard, error_response
from .metrics import Metrics
from .repos import PathRejected, RepoPathError, RepoRegistry, repo_snippets
from .scheduler import QueueFull, Scheduler
from .schemas import InfillCompletion, NativeCompletion, OpenAICompletion, RepoRegistration

if TYPE_CHECKING:
    from codeswift.engine import Engine
    from .convert import StreamEvents

log = logging.getLogger("codeswift.service")


@dataclass(frozen=True)
class ServiceConfig:
    """HTTP-side settings, parsed once by `codeswift serve` (or built by tests)."""
    token: str | None = None
    roots: tuple[str, ...] = ()
    queue_size: int = 16
    max_body_bytes: int = 2 * 1024 * 1024
    default_max_tokens: int = 64
    rate_limit: int = 0                  # requests a minute per client address; 0 = no limit
    model_name: str = ""


class ClientGone(Exception):
    """The client disconnected before its completion was answered."""


class Service:
    """What the routes share: the engine behind its queue, metrics, registered repositories."""

    def __init__(self, engine: Engine, config: ServiceConfig, worker=None):
        self.engine, self.config = engine, config
        self.model = config.model_name or Path(engine.info.model).name
        # an engine that runs requests concurrently (service/vllm_engine.py) brings its own scheduler
        self.scheduler = (engine.scheduler(config.queue_size) if callable(getattr(engine, "scheduler", None))
                          else Scheduler(engine, config.queue_size, worker))
        self.metrics = Metrics(self.scheduler.depth)
        self.repos = RepoRegistry(config.roots)

    async def complete(self, request: Request, req: CompletionRequest,
                       repo_id: str | None = None) -> CompletionResult:
        """Queue `req`; a client disconnect while queued or running cancels it."""
        await self._add_repo_snippets(req, repo_id)
        job = asyncio.ensure_future(self.scheduler.complete(req, threading.Event()))
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            done, _ = await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:                      # the handler itself is cancelled (shutdown)
            gone.cancel()
            job.cancel()
            raise
        gone.cancel()
        if job not in done:
            job.cancel()                           # drops it from the queue or stops the engine
            self.metrics.cancelled.inc()
            raise ClientGone()
        try:
            result = job.result()
        except CancelledError:
            self.metrics.cancelled.inc()
            raise
        self.metrics.observe_result(result)
        return result


    async def _add_repo_snippets(self, req: CompletionRequest, repo_id: str | None) -> None:
        if repo_id is None:
            return
        repo = self.repos.get(repo_id)
        if repo is None:
            raise BadInputError(f"unknown repo_id {repo_id!r} (register it with POST /v1/codeswift/repos)")
        req.snippets = req.snippets + await asyncio.to_thread(repo_snippets, repo, req)
        req.repo_root = str(repo.path)             # read by engines that draft from it per request (vLLM)

    async def stream(self, request: Request, req: CompletionRequest, rules: PostRules,
                     events: "StreamEvents", repo_id: str | None = None) -> EventSourceResponse:
        """Queue `req` and stream its text as the engine accepts tokens (SSE).

        The response starts with the first piece of text, so a request refused (queue full, bad
        input) still gets its plain HTTP error. The client's rules (stop strings, n_indent) cut
        the stream as it goes and end the generation once they fire. A client that goes away
        cancels the generation."""
        await self._add_repo_snippets(req, repo_id)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        enough = threading.Event()
        cancelled = threading.Event()

        def on_text(delta: str) -> bool:                    # engine thread
            loop.call_soon_threadsafe(queue.put_nowait, delta)
            return enough.is_set()
        req.on_text = on_text
        job = asyncio.ensure_future(self.scheduler.complete(req, cancelled))
        job.add_done_callback(lambda _f: queue.put_nowait(None))
        pieces: list[str] = []
        rs = RuleStream(rules, pieces.append)

        async def next_pieces() -> bool:
            """Wait for engine text; False once the engine is done."""
            while True:
                item = await queue.get()
                if item is None:
                    return False
                if rs.push(item):
                    enough.set()
                if pieces:
                    return True
        first = asyncio.ensure_future(next_pieces())
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait({first, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                raise ClientGone()
            more = first.result()
            if not more:
                job.result()                               # raises the refusal / error
        except BaseException:
            first.cancel()
            cancelled.set()
            job.cancel()
            raise
        finally:
            gone.cancel()

        async def gen():
            nonlocal more
            try:
                for e in events.start():
                    yield _event(e)
                while True:
                    for p in pieces:
                        for e in events.delta(p):
                            yield _event(e)
                    pieces.clear()
                    if not more:
                        break
                    more = await next_pieces()
                try:
                    result = job.result()
                except CodeswiftError as e:                # failed mid-stream: say so, then end
                    yield _event(("error", {"error": {"message": str(e), "type": type(e).__name__}}))
                    return
                rs.flush()
                for p in pieces:
                    for e in events.delta(p):
                        yield _event(e)
                self.metrics.observe_result(result)
                cut = Cut(rs.text[:rs.sent], rs.reason or result.finish_reason, rs.word)
                for e in events.end(result, cut):
                    yield _event(e)
            finally:
                if not job.done():                         # the client went away
                    cancelled.set()
                    job.cancel()
                    self.metrics.cancelled.inc()
        return EventSourceResponse(gen(), sep="\n")


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _event(e: tuple[str | None, Any]) -> ServerSentEvent:
    name, data = e
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return ServerSentEvent(data=text, event=name, sep="\n")


def _sse(events: list[tuple[str | None, Any]]) -> EventSourceResponse:
    """A few server-sent events known in advance (llama.cpp's n_predict 0)."""
    async def gen():
        for e in events:
            yield _event(e)
    return EventSourceResponse(gen(), sep="\n")


def http_server(app: FastAPI, sock, log_level: str, engine_note: str = ""):
    """The uvicorn server for `app` on the bound `sock`, after the start-up line on stderr."""
    import sys

    import uvicorn
    svc: Service = app.state.service
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"codeswift serve: http://{shown}:{port} (model {svc.model}, {engine_note + ', ' if engine_note else ''}"
          f"{'token required' if svc.config.token else 'no token, loopback only'})", file=sys.stderr, flush=True)
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, server_header=False, timeout_graceful_shutdown=5))


def create_app(engine: Engine, config: ServiceConfig | None = None, worker=None) -> FastAPI:
    """The FastAPI app around a loaded in-process engine; `worker`: the `codeswift.worker.Worker`
    it was loaded on, which then runs its completions (else a new one)."""
    config = config or ServiceConfig()
    svc = Service(engine, config, worker)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        svc.scheduler.close()

    app = FastAPI(title="codeswift", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.service = svc
    _install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        """Liveness; the only route that needs no token."""
        return {"status": "ok", "model": svc.model}

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/codeswift/complete")
    async def native_complete(body: NativeCompletion, request: Request):
        """codeswift's own shape: the LSP server's `serverUrl` mode calls this."""
        req = convert.native_request(body, config.default_max_tokens)
        if body.stream:
            return await svc.stream(request, req, PostRules(), convert.NativeEvents(), body.repo_id)
        result = await svc.complete(request, req, body.repo_id)
        return result.to_json()

    @app.post("/infill")
    async def infill(body: InfillCompletion, request: Request):
        """llama.cpp server's /infill (llama.vscode, llama.vim)."""
        req, rules = convert.infill_request(body, config.default_max_tokens)
        if req.max_tokens == 0:
            out = convert.infill_empty(svc.model)
            return _sse([(None, out)]) if body.stream else out
        if body.stream:
            return await svc.stream(request, req, rules, convert.InfillEvents(svc.model, body.response_fields))
        result = await svc.complete(request, req)
        return convert.infill_response(result, apply_rules(result, rules), svc.model, body.response_fields)

    @app.post("/v1/completions")
    @app.post("/completions", include_in_schema=False)     # llama.cpp serves both paths too
    async def openai_completions(body: OpenAICompletion, request: Request):
        """OpenAI legacy completions (Continue's `openai` provider for autocomplete)."""
        req, rules = convert.openai_request(body, config.default_max_tokens)
        if body.stream:
            return await svc.stream(request, req, rules, convert.OpenAIEvents(body, svc.model, req))
        result = await svc.complete(request, req)
        return convert.openai_response(result, apply_rules(result, rules), body, svc.model, req)

    @app.get("/v1/models")
    async def models() -> dict:
        """OpenAI model list: the one loaded model."""
        return {"object": "list", "data": [{"id": svc.model, "object": "model", "owned_by": "codeswift"}]}

    @app.post("/v1/codeswift/repos")
    async def register_repo(body: RepoRegistration) -> dict:
        """Register (and index, when the datastore is installed) a folder under --root."""
        repo = await asyncio.to_thread(svc.repos.register, body.path, engine.tokenizer)
        return repo.to_json()

    @app.get("/v1/codeswift/repos")
    async def list_repos() -> dict:
        """Registered repositories."""
        return {"roots": [str(r) for r in svc.repos.roots], "repos": [r.to_json() for r in svc.repos.all()]}

    paths = {r.path for r in app.routes}
    app.add_middleware(Guard, token=config.token, max_body=config.max_body_bytes,
                       metrics=svc.metrics, endpoints=lambda: paths, rate_limit=config.rate_limit)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def on(exc_type, status: int, kind: str, headers: dict | None = None):
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return error_response(status, str(exc) or kind, kind, headers)
        app.add_exception_handler(exc_type, handler)

    on(QueueFull, 429, "queue_full", {"Retry-After": "1"})
    on(BadInputError, 400, "invalid_request_error")
    on(convert.FieldError, 422, "invalid_request_error")
    on(RepoPathError, 400, "invalid_request_error")
    on(PathRejected, 403, "forbidden")
    on(CancelledError, 503, "cancelled")

    @app.exception_handler(ClientGone)
    async def client_gone(_request: Request, _exc: ClientGone) -> Response:
        return Response(status_code=499)            # nobody is listening; for logs and metrics

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
            return error_response(400, f"malformed JSON body: {detail}".rstrip(": "), "invalid_request_error")
        return error_response(422, "; ".join(_describe(e) for e in errors), "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {400: "invalid_request_error", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"malformed JSON body: {exc.detail}" if exc.status_code == 400 else str(exc.detail)
        return error_response(exc.status_code, message, kind, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error: {type(exc).__name__}", "internal_error")


def _describe(error: dict) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    return f"{loc}: {error.get('msg', 'invalid')}"
