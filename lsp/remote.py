"""A `codeswift serve` instance behind the engine's interface (`serverUrl` mode).

    engine = RemoteEngine("http://host:8080", token=None)
    engine.complete(CompletionRequest(...)) -> CompletionResult          # blocking
    await engine.complete_async(CompletionRequest(...))                   # cancelling the task
                                                                          # closes the connection,
                                                                          # which stops the server
"""
from __future__ import annotations

from typing import Any

import httpx

from codeswift.errors import BadInputError, CancelledError, CodeswiftError
from codeswift.types import CompletionRequest, CompletionResult

COMPLETE_PATH = "/v1/codeswift/complete"


class RemoteEngine:
    """POSTs completions to `{url}/v1/codeswift/complete` (the service's native endpoint)."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.model_id = self.url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self._aclient = httpx.AsyncClient(headers=headers, timeout=timeout)

    def health(self) -> dict:
        """GET /health: {"status": "ok", "model": ...}; raises CodeswiftError when unreachable."""
        try:
            r = self._client.get(self.url + "/health")
        except httpx.HTTPError as e:
            raise CodeswiftError(f"cannot reach {self.url}: {e}") from e
        return _json(r, self.url)

    def complete(self, req: CompletionRequest) -> CompletionResult:
        if req.is_cancelled is not None and req.is_cancelled():
            raise CancelledError("completion cancelled")
        try:
            r = self._client.post(self.url + COMPLETE_PATH, json=request_json(req))
        except httpx.HTTPError as e:
            raise CodeswiftError(f"cannot reach {self.url}: {e}") from e
        return result_from_json(_json(r, self.url))

    async def complete_async(self, req: CompletionRequest) -> CompletionResult:
        try:
            r = await self._aclient.post(self.url + COMPLETE_PATH, json=request_json(req))
        except httpx.HTTPError as e:
            raise CodeswiftError(f"cannot reach {self.url}: {e}") from e
        return result_from_json(_json(r, self.url))

    def close(self) -> None:
        self._client.close()


def request_json(req: CompletionRequest) -> dict[str, Any]:
    return {"prefix": req.prefix, "suffix": req.suffix, "path": req.path, "language": req.language,
            "max_tokens": req.max_tokens, "stop": req.stop, "speculative": req.speculative,
            "doc_id": req.doc_id, "temperature": req.temperature, "top_p": req.top_p, "seed": req.seed}


def result_from_json(body: Any) -> CompletionResult:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise CodeswiftError(f"unexpected reply from the completion server: {str(body)[:200]}")
    return CompletionResult(text=body["text"], tokens=list(body.get("tokens") or []),
                            finish_reason=str(body.get("finish_reason", "")),
                            stats=dict(body.get("stats") or {}))


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
