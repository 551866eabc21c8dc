#!/usr/bin/env python
"""Completion latency as an editor sees it: a real LSP client driving `codeswift lsp`.

For each repo-dev task (../shared/bench/repo-dev/tasks.jsonl) the client opens the task file
with text prefix + suffix, asks for an inline completion at the cursor, then types the first
characters of the gold text one at a time, asking again after each (as an editor does while
the user types). The repositories are unpacked into one workspace, the task file replaced by
prefix + suffix, and indexed by the server like any workspace.

Reported: client-observed latency (request sent -> reply read) p50/p95, split by single-line /
multi-line (the server's own decision for that cursor) and by cold (first request at a task:
new document, no KV or completion cache) / warm (while typing); time to first token (the
engine's prefill_ms, from `codeswift/status`); completion-cache hit rate. Debounce is set to
0 so it is not counted.

The server's warm-up is off unless `--warmup`: then the client waits after opening each task
file (a user reading it) until the server has prefilled its prompt (the `warm-up:` trace), and
the cold rows show the first request after that; compare with a run without `--warmup`.

    python scripts/lsp_latency.py --model qwen2.5-coder-0.5b --tasks 6 --typed 4 --json out.json
    python scripts/lsp_latency.py --model qwen2.5-coder-0.5b --tasks 6 --typed 4 --warmup
    python scripts/lsp_latency.py --model qwen2.5-coder-0.5b --tasks 6 --typed 4 --warmup --cursor
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from lsp.context import decide_stop, language_of  # noqa: E402

BENCH = ROOT.parent / "shared" / "bench" / "repo-dev"
WARMED = re.compile(r"warm-up: (\d+) prompt tokens of (\S+) cached in (\d+) ms")


def pick_tasks(path: Path, n: int) -> list[dict]:
    """The first task of each (repo, kind), Python repositories first, round-robin, `n` in all."""
    tasks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    firsts: dict[tuple[str, str], dict] = {}
    for t in tasks:
        firsts.setdefault((t["repo"], t["kind"]), t)
    ordered = sorted(firsts.values(), key=lambda t: (t["language"] != "py", t["repo"], t["kind"]))
    return ordered[:n]


def make_workspace(tasks: list[dict], root: Path) -> None:
    """Unpack each task's repository (`REPO/...` in its tarball) under `root`, the task file cut
    to prefix + suffix."""
    for repo in sorted({t["repo"] for t in tasks}):
        with tarfile.open(BENCH / "repos" / f"{repo}.tar.gz") as tar:
            tar.extractall(root, filter="data")
    for t in tasks:
        f = task_file(root, t)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(t["prefix"] + t["suffix"])


def task_file(root: Path, task: dict) -> Path:
    return root / task["repo"] / task["path"]


def position(prefix: str) -> types.Position:
    last = prefix.rsplit("\n", 1)[-1]
    return types.Position(line=prefix.count("\n"), character=len(last.encode("utf-16-le")) // 2)


class Client:
    """pygls' LanguageClient plus the last `codeswift/status` the server sent."""

    def __init__(self) -> None:
        self.lsp = LanguageClient("codeswift-lsp-latency", "1")
        self.status: dict = {}
        self.lsp.feature("codeswift/status")(lambda params: self._on_status(params))
        self.lsp.feature(types.WINDOW_LOG_MESSAGE)(lambda p: print(f"  [server] {p.message}", file=sys.stderr))
        self.lsp.feature(types.WINDOW_SHOW_MESSAGE)(lambda p: print(f"  [server] {p.message}", file=sys.stderr))
        self.lsp.feature(types.LOG_TRACE)(lambda params: self._on_trace(params.message))
        self.version: dict[str, int] = {}
        self.warmed: dict[str, tuple[int, int]] = {}        # uri -> (prompt tokens cached, ms) of the last
        self.warm_count: dict[str, int] = {}                 # uri -> finished warm-ups

    def _on_trace(self, message: str) -> None:
        if (m := WARMED.match(message)) is not None:
            self.warmed[m.group(2)] = (int(m.group(1)), int(m.group(3)))
            self.warm_count[m.group(2)] = self.warm_count.get(m.group(2), 0) + 1

    def _on_status(self, params) -> None:
        self.status = _plain(params)

    async def wait_ready(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = _plain(await asyncio.wait_for(
                self.lsp.protocol.send_request_async("codeswift/status", {}), 30))
            if st["state"] in ("ready", "error"):
                return st
            await asyncio.sleep(0.5)
        raise TimeoutError("server not ready")

    async def wait_warmed(self, uri: str, timeout: float, count: int = 1) -> tuple[int, int] | None:
        """(prompt tokens, ms) of the server's `count`-th warm-up of `uri`; None if none came."""
        deadline = time.monotonic() + timeout
        while self.warm_count.get(uri, 0) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.warmed.get(uri) if self.warm_count.get(uri, 0) >= count else None

    def cursor(self, uri: str, at: types.Position) -> None:
        """What the VS Code extension sends when the cursor rests somewhere."""
        self.lsp.protocol.notify("codeswift/cursor", {"textDocument": {"uri": uri},
                                                      "position": {"line": at.line, "character": at.character}})

    def open(self, uri: str, text: str, language_id: str) -> None:
        self.version[uri] = 1
        self.lsp.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)))

    def type_char(self, uri: str, at: types.Position, ch: str) -> None:
        self.version[uri] += 1
        self.lsp.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=self.version[uri]),
            [types.TextDocumentContentChangePartial(range=types.Range(at, at), text=ch)]))

    async def inline(self, uri: str, pos: types.Position) -> tuple[float, str, dict]:
        """(milliseconds, suggested text, the status the server sent with the reply)."""
        t0 = time.perf_counter()
        r = await self.lsp.text_document_inline_completion_async(types.InlineCompletionParams(
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            text_document=types.TextDocumentIdentifier(uri=uri), position=pos))
        ms = (time.perf_counter() - t0) * 1000
        text = r.items[0].insert_text if r and r.items else ""
        return ms, text, dict(self.status.get("stats", {}))


def _plain(obj):
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


async def run(args: argparse.Namespace) -> dict:
    tasks = pick_tasks(BENCH / "tasks.jsonl", args.tasks)
    if args.only:
        wanted = args.only.split(",")
        tasks = [t for t in tasks if t["task_id"] in wanted]
    workspace = Path(tempfile.mkdtemp(prefix="codeswift-lsp-latency-"))
    make_workspace(tasks, workspace)
    client = Client()
    cmd = [sys.executable, "-m", "codeswift.cli", "lsp", "--log-level", args.log_level]
    if args.server_log:
        cmd += ["--log-file", args.server_log]
    t_start = time.perf_counter()
    await client.lsp.start_io(*cmd)
    await client.lsp.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=workspace.as_uri(),
        trace=types.TraceValue.Verbose if args.warmup else None,
        initialization_options={"model": args.model, "maxTokens": args.max_tokens, "debounceMs": 0,
                                "index": not args.no_index, "dtype": args.dtype, "backend": args.backend,
                                "warmup": args.warmup}))
    client.lsp.initialized(types.InitializedParams())
    st = await client.wait_ready(args.ready_timeout)
    ready_s = time.perf_counter() - t_start
    if st["state"] != "ready":
        raise SystemExit(f"server failed: {st['message']}")
    print(f"server ready in {ready_s:.1f} s ({st['message']}; {st['device']} {st['dtype']})", file=sys.stderr)

    rows = []
    for t in tasks:
        path = task_file(workspace, t)
        uri = path.as_uri()
        language = language_of("", str(path))
        # Warm-ups are counted per URI, and two tasks may share a file: wait for this task's own.
        done = client.warm_count.get(uri, 0)
        client.open(uri, t["prefix"] + t["suffix"], language or "plaintext")
        warmed = await client.wait_warmed(uri, args.warmup_timeout, count=done + 1) if args.warmup else None
        if args.warmup and args.cursor:                 # the user puts the cursor at the task
            client.cursor(uri, position(t["prefix"]))
            again = await client.wait_warmed(uri, args.warmup_timeout, count=done + 2)
            warmed = (again[0], again[1] + warmed[1]) if again and warmed else again or warmed
        if args.warmup:
            print(f"  {t['task_id']:24} warm-up: {warmed and f'{warmed[0]} tokens in {warmed[1]} ms'}",
                  file=sys.stderr)
        prefix, suffix = t["prefix"], t["suffix"]
        for i in range(min(args.typed, len(t["gold"])) + 1):
            if i:
                client.type_char(uri, position(prefix), t["gold"][i - 1])
                prefix += t["gold"][i - 1]
            mode = decide_stop(prefix, suffix, language)
            ms, text, stats = await client.inline(uri, position(prefix))
            cached = stats.get("lastTokens") == 0 and stats.get("lastPrefillMs") is None
            rows.append({"task": t["task_id"], "kind": t["kind"], "mode": mode, "typed": i,
                         "phase": "cold" if i == 0 else "warm", "ms": round(ms, 1), "cached": cached,
                         "prefill_ms": stats.get("lastPrefillMs"), "tokens": stats.get("lastTokens"),
                         "chars": len(text), "warmup_ms": warmed[1] if warmed and i == 0 else None,
                         # where the time went (the server's own split; None for cache hits)
                         "engine_ms": stats.get("lastEngineMs"), "steps": stats.get("lastSteps"),
                         "verify_ms": stats.get("lastVerifyMs"), "draft_ms": stats.get("lastDraftMs")})
            print(f"  {t['task_id']:24} typed={i} {mode:5} {ms:8.1f} ms  "
                  f"{'cache' if cached else 'model'} prefill={stats.get('lastPrefillMs')} "
                  f"tokens={stats.get('lastTokens')} engine={stats.get('lastEngineMs')} "
                  f"steps={stats.get('lastSteps')} verify={stats.get('lastVerifyMs')} "
                  f"draft={stats.get('lastDraftMs')}", file=sys.stderr)
        client.lsp.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    final = _plain(await client.lsp.protocol.send_request_async("codeswift/status", {}))
    await client.lsp.shutdown_async(None)
    client.lsp.exit(None)
    await client.lsp.stop()
    return {"model": args.model, "backend": st["backend"], "device": st["device"], "dtype": st["dtype"],
            "ready_s": round(ready_s, 1), "warmup": args.warmup,
            "max_tokens": args.max_tokens, "index": not args.no_index, "rows": rows,
            "summary": summarise(rows), "server_stats": final.get("stats", {})}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, -(-len(ordered) * q // 100)) - 1], 1)


def summarise(rows: list[dict]) -> dict:
    groups = {
        "all": rows,
        "single-line": [r for r in rows if r["mode"] == "line"],
        "multi-line": [r for r in rows if r["mode"] == "block"],
        "cold (first request at a task)": [r for r in rows if r["phase"] == "cold"],
        "warm (while typing)": [r for r in rows if r["phase"] == "warm"],
        "warm, model run": [r for r in rows if r["phase"] == "warm" and not r["cached"]],
        "warm, cache hit": [r for r in rows if r["phase"] == "warm" and r["cached"]],
    }
    out = {}
    for name, rs in groups.items():
        ms = [r["ms"] for r in rs]
        pre = [r["prefill_ms"] for r in rs if r["prefill_ms"] is not None]
        out[name] = {"n": len(rs), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95),
                     "ttft_p50_ms": pct(pre, 50), "ttft_p95_ms": pct(pre, 95),
                     "mean_ms": round(statistics.fmean(ms), 1) if ms else None}
    warm = groups["warm (while typing)"]
    out["cache_hit_rate_while_typing"] = round(sum(r["cached"] for r in warm) / len(warm), 3) if warm else None
    warmups = [r["warmup_ms"] for r in rows if r["warmup_ms"] is not None]
    out["warmup_p50_ms"] = pct(warmups, 50)
    return out


def print_table(result: dict) -> None:
    print(f"\ncodeswift lsp latency — {result['model']} ({result['backend']}) on {result['device']} "
          f"{result['dtype']}, "
          f"maxTokens {result['max_tokens']}, index {'on' if result['index'] else 'off'}, "
          f"warm-up {'on' if result['warmup'] else 'off'}, "
          f"server ready after {result['ready_s']} s")
    print(f"{'group':34} {'n':>3} {'p50 ms':>9} {'p95 ms':>9} {'TTFT p50':>9} {'TTFT p95':>9}")
    for name, g in result["summary"].items():
        if isinstance(g, dict):
            f = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
            print(f"{name:34} {g['n']:>3} {f(g['p50_ms']):>9} {f(g['p95_ms']):>9} "
                  f"{f(g['ttft_p50_ms']):>9} {f(g['ttft_p95_ms']):>9}")
    print(f"completion-cache hit rate while typing: {result['summary']['cache_hit_rate_while_typing']}")
    if result["warmup"]:
        print(f"warm-up after opening a file (idle time before the first request): "
              f"p50 {result['summary']['warmup_p50_ms']} ms")
    s = result["server_stats"]
    print(f"server: {s.get('completions')} completions, accepted/step {s.get('acceptedPerStep')}, "
          f"est. speedup {s.get('speedup')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--backend", default="auto", choices=("auto", "transformers", "llamacpp"))
    ap.add_argument("--tasks", type=int, default=6, help="number of tasks (default: %(default)s)")
    ap.add_argument("--only", help="comma-separated task ids among the picked ones (e.g. requests/line/20)")
    ap.add_argument("--typed", type=int, default=4, help="gold characters typed per task (default: %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-index", action="store_true", help="do not index the workspace")
    ap.add_argument("--warmup", action="store_true",
                    help="server warm-up on; wait for it after opening each file before the first request")
    ap.add_argument("--cursor", action="store_true",
                    help="with --warmup: send codeswift/cursor at the task position after opening (as the "
                         "VS Code extension does when the cursor rests there) and wait for that warm-up too")
    ap.add_argument("--warmup-timeout", type=float, default=120, help="longest wait for a warm-up (s)")
    ap.add_argument("--ready-timeout", type=float, default=900)
    ap.add_argument("--json", help="also write the raw rows and summary here")
    ap.add_argument("--server-log", help="the server's log file (default: its stderr, discarded)")
    ap.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = ap.parse_args()
    result = asyncio.run(run(args))
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
