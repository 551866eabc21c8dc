"""A `codeswift serve` instance behind the engine protocol (`serverUrl` mode).

    engine = RemoteEngine("http://host:8080", token=None)
    engine.complete(CompletionRequest(...)) -> CompletionResult          # blocking, cancellable

It is a `codeswift.types.CompletionEngine` like the in-process engine, so the LSP server drives
both the same way. `complete` blocks the calling thread (the LSP's engine thread) but polls
`req.is_cancelled` while the request is in flight; a cancel closes the connection, which stops
the server's generation.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import httpx

from codeswift.errors import BadInputError, CancelledError, CodeswiftError
from codeswift.types import CompletionRequest, CompletionResult, EngineInfo

COMPLETE_PATH = "/v1/codeswift/complete"
CANCEL_POLL_S = 0.02


class RemoteEngine:
    """POSTs completions to `{url}/v1/codeswift/complete` (the service's native endpoint)."""

    repo_index = None                   # the server indexes its own repositories

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.info = EngineInfo(model=self.url, backend="remote")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        # One event loop thread owns the async client: a blocking caller waits on a future it
        # can abandon (and cancel, closing the connection) when its request is cancelled.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="codeswift-remote", daemon=True)
        self._thread.start()
        self._client: httpx.AsyncClient = self._call(self._make_client())

    async def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=self._headers, timeout=self._timeout)

    def health(self) -> dict:
        """GET /health: {"status": "ok", "model": ...}; raises CodeswiftError when unreachable.
        Names the served model in `info`."""
        body = self._call(self._request("GET", "/health"))
        if isinstance(body, dict) and body.get("model"):
            self.info = EngineInfo(model=str(body["model"]), backend="remote")
        return body

    def complete(self, req: CompletionRequest) -> CompletionResult:
        """The server's completion; with `req.on_text`, streamed (SSE) into it as the server's
        engine accepts tokens (its return value is not sent back: the server runs to its end)."""
        if req.on_text is not None:
            body = self._call(self._stream(req.to_json(), req.on_text), req.is_cancelled)
        else:
            body = self._call(self._request("POST", COMPLETE_PATH, req.to_json()), req.is_cancelled)
        try:
            return CompletionResult.from_json(body)
        except ValueError as e:
            raise CodeswiftError(f"unexpected reply from the completion server: {e}") from None

    def warm(self, req: CompletionRequest) -> int:
        """Nothing to do here: the server keeps each document's prompt KV between requests."""
        return 0

    def opening_offset(self, text: str) -> int:
        return len(text)

    def attach_repo(self, root: str | None) -> None:
        """The server indexes the repositories registered with it (POST /v1/codeswift/repos)."""

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.aclose())
        except CodeswiftError:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)

    # -- plumbing ------------------------------------------------------------------------
    def _call(self, coro, is_cancelled=None) -> Any:
        """Run `coro` on the client's loop and wait for it, polling `is_cancelled`."""
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        while True:
            try:
                return fut.result(timeout=CANCEL_POLL_S if is_cancelled is not None else None)
            except concurrent.futures.TimeoutError:
                if is_cancelled():
                    fut.cancel()                     # cancels the request: the connection closes
                    raise CancelledError("completion cancelled") from None

    async def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        try:
            r = await self._client.request(method, self.url + path, json=body)
        except httpx.HTTPError as e:
            raise CodeswiftError(f"cannot reach {self.url}: {e}") from e
        return _json(r, self.url)


    async def _stream(self, body: dict, on_text) -> Any:
        """POST with stream true: `chunk` events go to `on_text`, the `done` event is the reply."""
        try:
            async with self._client.stream("POST", self.url + COMPLETE_PATH, json={**body, "stream": True}) as r:
                if r.status_code >= 400:
                    await r.aread()
                    return _json(r, self.url)
                event = None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = _event_data(line[5:].strip(), self.url)
                        if event == "chunk":
                            on_text(data.get("text", ""))
                        elif event == "done":
                            return data
                        elif event == "error":
                            raise CodeswiftError(f"{self.url}: {data.get('error', {}).get('message', data)}")
        except httpx.HTTPError as e:
            raise CodeswiftError(f"cannot reach {self.url}: {e}") from e
        raise CodeswiftError(f"{self.url} ended the stream without a result")


def _event_data(text: str, url: str) -> dict:
    import json
    try:
        data = json.loads(text)
    except ValueError:
        raise CodeswiftError(f"unexpected event from {url}: {text[:200]}") from None
    if not isinstance(data, dict):
        raise CodeswiftError(f"unexpected event from {url}: {text[:200]}")
    return data


def _json(r: httpx.Response, url: str) -> Any:
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code < 400:
        return body
    message = body.get("error", {}).get("message") if isinstance(body, dict) and \
        isinstance(body.get("error"), dict) else r.text[:200]
    if r.status_code in (401, 403):
        raise CodeswiftError(f"{url} refused the request (HTTP {r.status_code}): check serverToken")
    if r.status_code in (400, 413, 422):
        raise BadInputError(f"{url}: {message}")
    raise CodeswiftError(f"{url} answered HTTP {r.status_code}: {message}")
