"""ASGI middleware in front of every route: metrics, rate limit, Host check, bearer token,
body limits.

Checks run before the body is read, cheapest first, so an unauthenticated client cannot
make the server buffer megabytes. The body is then read once, bounded, and replayed to the
app; later `receive()` calls go to the server (that is how handlers see a disconnect).
"""
from __future__ import annotations

import ipaddress
import math
import secrets
import time
from typing import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

OPEN_PATHS = frozenset({"/health"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_response(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    """The one error shape of the service: {"error": {"message", "type"}}."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (as names, addresses or `[::1]`)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    if header.startswith("["):                  # [::1]:8080
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class RateLimit:
    """A token bucket per client address: `per_minute` requests a minute, in bursts of as many."""

    MAX_CLIENTS = 4096                   # beyond this, clients whose bucket is full are forgotten

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}      # client -> (tokens, at)

    def retry_after(self, client: str, now: float | None = None) -> int:
        """0 when the client may go ahead (and is charged one request), else whole seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        if client not in self._buckets and len(self._buckets) >= self.MAX_CLIENTS:
            self._forget_idle(now, rate)
        self._buckets[client] = (tokens - 1.0, now)
        return 0

    def _forget_idle(self, now: float, rate: float) -> None:
        full = [c for c, (t, at) in self._buckets.items() if t + (now - at) * rate >= self.per_minute]
        for c in full:
            del self._buckets[c]


class Guard:
    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int, metrics: Metrics,
                 endpoints: Callable[[], set[str]], rate_limit: int = 0):
        self.app, self.token, self.max_body, self.metrics = app, token, max_body, metrics
        self._endpoints = endpoints
        self.rate = RateLimit(rate_limit) if rate_limit > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self._guarded(scope, receive, send_status)
        finally:
            path = scope["path"] if scope["path"] in self._endpoints() else "other"
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] not in OPEN_PATHS and self.rate is not None:
            wait = self.rate.retry_after((scope.get("client") or ("?",))[0])
            if wait:
                await error_response(429, f"rate limit: more than {self.rate.per_minute} requests a minute "
                                     f"from this client; retry in {wait} s", "rate_limited",
                                     {"Retry-After": str(wait)})(scope, receive, send)
                return
        if scope["path"] not in OPEN_PATHS:
            problem = self._check(headers)
            if problem is not None:
                await problem(scope, receive, send)
                return
        if scope["method"] in _BODY_METHODS:
            problem = self._check_body_headers(headers)
            if problem is not None:
                await problem(scope, receive, send)
                return
            body = await self._read_body(receive)
            if body is None:
                await error_response(413, f"request body larger than {self.max_body} bytes",
                                     "request_too_large")(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _check(self, headers: dict[str, str]):
        if self.token is None:
            # No token means loopback only; a non-loopback Host is a DNS-rebinding page.
            if not is_loopback_host(_host_of(headers.get("host", "localhost"))):
                return error_response(403, "Host header must name a loopback address "
                                      "(start the server with --token to serve other names)", "forbidden")
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode("latin-1"), self.token.encode()):
            return error_response(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                                  "authentication_error", {"WWW-Authenticate": "Bearer"})
        return None

    def _check_body_headers(self, headers: dict[str, str]):
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            return error_response(415, "Content-Type must be application/json", "unsupported_media_type")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return error_response(413, f"request body larger than {self.max_body} bytes", "request_too_large")
        return None

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it exceeds the limit (chunked uploads included)."""
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
