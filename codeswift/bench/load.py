"""`codeswift bench --mode load`: N simulated editors typing at once against real HTTP servers.

Each engine is a `codeswift serve` process (`serve`: today's engine; `vllm`, `vllm-ngram`,
`vllm-codeswift`: `codeswift serve --engine vllm` with `--vllm-spec none|ngram|codeswift`),
started once on a free port, waited for on `GET /health`, warmed up with one request, then
driven with each editor count in turn and stopped. An engine that does not start (no vLLM
venv, a bad flag, a model that does not load) is reported as skipped with its reason.

A simulated editor is an asyncio task with its own `httpx.AsyncClient`. It replays the session
of `--mode session` over every task (the gold span typed in `--session-requests` steps, one
completion request after each), starting at task `i mod T` so that editors are in different
files at a time; editor i starts `i * --stagger-ms` after the first, and sends its next request
when the previous answer is in (plus `--think-ms`). Requests go to the native endpoint with
`stream: true`, so the first token's time is measured on the client, as an editor sees it.

Per engine and editor count: throughput (generated tokens / wall time from the first request to
the last answer), tokens/s per request (generated tokens / summed request latency), latency and
time-to-first-token p50/p95, tokens per verification step (from the response stats, "-" when the
engine does not report steps), and identical greedy outputs: every answer is compared with the
reference engine's first answer to the same request (plain `vllm` when it ran, else `serve`), so
a batch-dependent answer of the reference itself shows too. The load bench sees no logits, so a
divergence is listed with where it starts, not classified as a near-tie.

Every editor replays the same requests, so a server's caches that outlive a request (vLLM's
prefix cache, codeswift's per-document KV and answer memory) serve later editors too; per editor
count the document ids are fresh, the engines' cross-document caches are not reset.

Here: the flags, the requests, the simulated editors and the run; `load_engines` starts and stops
the servers, `load_report` aggregates and writes the report.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInputError
from .load_engines import ENGINES, EngineProcess, EngineStartError
from .load_report import report_load
from .tasks import Task, build_requests, completion_request, load_tasks

COMPLETE_PATH = "/v1/codeswift/complete"
MAX_EDITORS = 1024
REQUEST_TIMEOUT_S = 900.0
WARM_UP = {"prefix": "def add(a, b):\n    return", "max_tokens": 4, "doc_id": "load-warm-up", "stream": True}
MAX_RETRIES = 50                    # HTTP 429 (queue full): wait and ask again, counted


# -- flags ----------------------------------------------------------------------------------
def parse_editors(spec: str) -> list[int]:
    """`1,4,16` -> [1, 4, 16] (sorted, distinct); each count in 1..MAX_EDITORS."""
    out = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            n = int(part)
        except ValueError:
            raise BadInputError(f"--editors: {part!r} is not a number (give counts like 1,4,16)")
        if not 1 <= n <= MAX_EDITORS:
            raise BadInputError(f"--editors: {n} is out of range 1..{MAX_EDITORS}")
        out.add(n)
    return sorted(out)


def parse_engines(spec: str) -> list[str]:
    """`serve,vllm-ngram` -> ["serve", "vllm-ngram"] (in the order given); unknown names refused."""
    names = [p.strip() for p in str(spec).split(",") if p.strip()]
    if not names:
        raise BadInputError("--engines: name at least one engine")
    for n in names:
        if n not in ENGINES:
            raise BadInputError(f"--engines: unknown engine {n!r} (known: {', '.join(ENGINES)})")
    if len(set(names)) != len(names):
        raise BadInputError("--engines: an engine is named twice")
    return names


# -- the requests ---------------------------------------------------------------------------
@dataclass
class Planned:
    """One request of a session, as the native endpoint's body plus what the rows record."""
    task_id: str
    request: int
    typed_chars: int
    body: dict


def plan_session(tasks: list[Task], session_requests: int, max_tokens: int, stop: str | None,
                 penalty: float = 1.0, penalty_window: int = 0) -> list[Planned]:
    """The session of `--mode session` over every task: the requests an editor sends while
    the gold span is typed."""
    out = []
    for task in tasks:
        for r in build_requests(task, "session", session_requests):
            req = completion_request(task, r.prefix, max_tokens, stop, penalty, penalty_window)
            body = {k: v for k, v in req.to_json().items() if k != "snippets"}
            out.append(Planned(task.task_id, r.index, len(r.prefix) - len(task.prefix), body))
    return out


def editor_plan(plan: list[Planned], editor: int, editors: int) -> list[dict]:
    """Editor `editor`'s requests: the whole session, starting at its own task (i mod tasks),
    with document ids of its own for this editor count."""
    tasks = list(dict.fromkeys(p.task_id for p in plan))
    start = tasks[editor % len(tasks)] if tasks else None
    cut = next((i for i, p in enumerate(plan) if p.task_id == start), 0)
    ordered = plan[cut:] + plan[:cut]
    return [{"task_id": p.task_id, "request": p.request, "typed_chars": p.typed_chars,
             "body": {**p.body, "doc_id": f"load-n{editors}-e{editor}/{p.body.get('doc_id') or p.task_id}",
                      "stream": True}}
            for p in ordered]


# -- one request over SSE ---------------------------------------------------------------------
async def sse_events(lines):
    """(event name, data) of a server-sent-events stream of lines."""
    name, data = None, []
    async for line in lines:
        if line == "":
            if data:
                yield name, "\n".join(data)
            name, data = None, []
        elif line.startswith(":"):
            continue                                   # comment (keep-alive ping)
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield name, "\n".join(data)


async def send(client, body: dict, clock=time.perf_counter) -> dict:
    """One streamed completion: text, generated tokens, TTFT and latency (ms, from the first
    attempt: a 429 wait is part of what the editor waits), steps, errors."""
    retries = 0
    start = clock()
    while True:
        ttft, pieces, done, error = None, [], None, None
        try:
            async with client.stream("POST", COMPLETE_PATH, json=body) as resp:
                if resp.status_code == 429 and retries < MAX_RETRIES:
                    await resp.aread()
                    retries += 1
                    await asyncio.sleep(min(float(resp.headers.get("retry-after") or 1), 1.0) * 0.25)
                    continue
                if resp.status_code != 200:
                    error = f"HTTP {resp.status_code}: {(await resp.aread()).decode(errors='replace')[:300]}"
                else:
                    async for name, data in sse_events(resp.aiter_lines()):
                        if name == "chunk":
                            piece = json.loads(data).get("text", "")
                            if piece and ttft is None:
                                ttft = clock()
                            pieces.append(piece)
                        elif name == "done":
                            done = json.loads(data)
                        elif name == "error":
                            error = f"stream error: {data[:300]}"
                    if done is None and error is None:
                        error = "the stream ended without a done event"
        except Exception as e:                         # connection refused/reset, timeout, bad JSON
            error = f"{type(e).__name__}: {e}"
        end = clock()
        break
    row = {"start": start, "end": end, "latency_ms": (end - start) * 1000, "retries": retries,
           "ttft_ms": ((ttft if ttft is not None else end) - start) * 1000, "error": error,
           "text": "", "generated": 0, "steps": None, "finish_reason": None}
    if done is not None and error is None:
        stats = done.get("stats") or {}
        tokens = done.get("tokens") or []
        row.update(text=done.get("text", ""), finish_reason=done.get("finish_reason"),
                   generated=len(tokens) if tokens else int(stats.get("generated_tokens") or 0),
                   steps=stats.get("steps") or None, streamed_text_matches="".join(pieces) == done.get("text", ""),
                   prefill_ms=stats.get("prefill_ms"), reused_prompt_tokens=stats.get("reused_prompt_tokens"),
                   drafted_tokens=stats.get("drafted_tokens"), accepted_tokens=stats.get("accepted_tokens"))
    return row


async def _editor(url: str, headers: dict, editor: int, editors: int, requests: list[dict], delay_s: float,
                  think_s: float, t0: float, out: list[dict]) -> None:
    import httpx
    await asyncio.sleep(delay_s)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        for r in requests:
            row = await send(client, r["body"])
            start, end = row.pop("start"), row.pop("end")
            out.append({"editors": editors, "editor": editor, "task_id": r["task_id"], "request": r["request"],
                        "typed_chars": r["typed_chars"], "start_s": round(start - t0, 4),
                        "end_s": round(end - t0, 4), **row})
            if think_s:
                await asyncio.sleep(think_s)


async def drive(url: str, plan: list[Planned], editors: int, stagger_s: float, think_s: float,
                headers: dict | None = None) -> list[dict]:
    """`editors` simulated editors at once, each replaying the whole session; their rows."""
    out: list[dict] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_editor(url, headers or {}, i, editors, editor_plan(plan, i, editors),
                                   i * stagger_s, think_s, t0, out) for i in range(editors)))
    return out


# -- the run ------------------------------------------------------------------------------------
def check_args(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    """Every load-mode flag checked before anything starts."""
    editors = parse_editors(args.editors)
    engines = parse_engines(args.engines)
    if args.session_follow != "gold":
        raise BadInputError("--mode load replays the typed gold span (--session-follow gold)")
    if args.session_requests < 1:
        raise BadInputError("--session-requests must be >= 1")
    if args.max_tokens < 1:
        raise BadInputError("--max-tokens must be >= 1")
    if args.stagger_ms < 0 or args.think_ms < 0:
        raise BadInputError("--stagger-ms and --think-ms must be >= 0")
    if not 1.0 <= args.penalty <= 3.0 or args.penalty_window < 0:
        raise BadInputError("--penalty must be in 1..3 and --penalty-window >= 0")
    return editors, engines


def run_load(args: argparse.Namespace) -> dict:
    """`codeswift bench --mode load`: every engine at every editor count, then the report."""
    from rich.console import Console
    console = Console(stderr=True, width=180)          # the table has 13 columns
    editors, engines = check_args(args)
    kinds = set(args.kinds.split(",")) if args.kinds else None
    tasks = load_tasks(args.tasks, args.limit, kinds)
    if not tasks:
        raise BadInputError("no tasks selected")
    plan = plan_session(tasks, args.session_requests, args.max_tokens, args.stop, args.penalty, args.penalty_window)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"load: {len(tasks)} tasks, {len(plan)} requests per editor; editors {editors}; "
                  f"engines {', '.join(engines)}")
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    started: dict[str, dict] = {}
    interrupted = False
    try:
        for name in engines:
            eng = EngineProcess(name, args, max(editors), out_dir)
            console.print(f"{name}: starting {' '.join(eng.command(0)[3:])}")
            t = time.monotonic()
            try:
                eng.start()
            except EngineStartError as e:
                skipped[name] = str(e)
                console.print(f"[yellow]{name}: skipped: {e}[/]")
                continue
            try:
                started[name] = {"command": " ".join(eng.command(eng.port)[3:]), "health": eng.health,
                                 "start_s": round(time.monotonic() - t, 1)}
                warm = asyncio.run(send_once(eng.url, WARM_UP))
                if warm.get("error"):
                    skipped[name] = f"warm-up request failed: {warm['error']} (server: {eng.last_words()})"
                    console.print(f"[yellow]{name}: skipped: {skipped[name]}[/]")
                    continue
                for n in editors:
                    got = asyncio.run(drive(eng.url, plan, n, args.stagger_ms / 1000, args.think_ms / 1000))
                    for r in got:
                        r["engine"] = name
                    rows += got
                    ok = [r for r in got if not r["error"]]
                    console.print(f"{name} x{n} editors: {len(ok)}/{len(got)} answered, "
                                  f"{sum(r['generated'] for r in ok)} tokens")
            finally:
                eng.stop()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: writing what was measured so far[/]")
        interrupted = True
    meta = describe(args, editors, engines, tasks, len(plan), started, skipped, interrupted)
    return report_load(rows, meta, out_dir, console)


async def send_once(url: str, body: dict) -> dict:
    import httpx
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        return await send(client, body)


def describe(args, editors, engines, tasks, per_editor, started, skipped, interrupted) -> dict:
    from ..native import cpu_info
    return {"mode": "load", "model": args.model, "backend": args.backend, "device": args.device, "dtype": args.dtype,
            "tasks": args.tasks, "task_ids": [t.task_id for t in tasks], "requests_per_editor": per_editor,
            "session_requests": args.session_requests, "max_tokens": args.max_tokens, "editors": editors,
            "engines": engines, "stagger_ms": args.stagger_ms, "think_ms": args.think_ms,
            "cpu": cpu_info().describe(), "machine": platform.platform(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "servers": started, "skipped": skipped, "interrupted": interrupted}


