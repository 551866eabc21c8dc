"""The `codeswift bench` run: load every method once, warm up, calibrate, then per task and
request run every method on the same prompt and compare it with its family's reference."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from ..completion_cache import CompletionCache
from ..ending import make_stop, postprocess
from ..engine import ALL_SOURCES, Engine, EngineConfig
from ..errors import BadInputError
from ..loop import StopCheck
from ..models import load_model
from ..pref_cache import PrefCache
from ..prompt import PromptBudget
from ..sources import PREF
from ..types import CompletionRequest
from . import hf, llamacpp
from .compare import divergence, first_difference, gold_quality
from .llamacpp import LlamaCppSide
from .methods import engine_config, is_llamacpp, parse_methods, reference
from .server import default_server_methods, is_server, require_server
from .tasks import (RepoWorkspace, Request, Task, build_requests, completion_request, load_tasks, long_tasks,
                    mixed_session, spread, word_cuts)


@dataclass
class BenchRun:
    """One run's settings and what its stages share."""

    args: argparse.Namespace           # the `codeswift bench` flags
    console: Console                   # progress and tables (stderr); the summary line goes to stdout
    methods: list[str]                 # parsed: each family's reference included
    tasks: list[Task]                  # the measured tasks
    ref: Engine                        # builds every prompt and text, so every method sees the same ones
    model: object | None               # the transformers model of ar/pld (None: llama.cpp methods only)
    engines: dict[str, Engine]         # one per codeswift method: own caches, own learned acceptance
    lcpp: LlamaCppSide | None          # the llama.cpp methods' GGUF, backends and servers
    meta: dict = field(default_factory=dict)     # results.json's "meta"
    # session mode: per codeswift method, the completion cache the LSP serves typing-along from
    caches: dict[str, CompletionCache] = field(default_factory=dict)

    @property
    def tokenizer(self):
        return self.ref.tokenizer

    @property
    def session(self) -> bool:
        return self.args.mode == "session"

    @property
    def follows_model(self) -> bool:
        """The session's later requests depend on the suggestions (model or mix)."""
        return self.session and self.args.session_follow in ("model", "mix")

    def request(self, task: Task, prefix: str) -> CompletionRequest:
        """The request an editor sends at the end of `prefix` in the task's file."""
        return completion_request(task, prefix, self.args.max_tokens, self.args.stop,
                                  self.args.penalty, self.args.penalty_window)

    @property
    def penalised(self) -> bool:
        return self.args.penalty != 1.0

    def stop_for(self, req: CompletionRequest) -> StopCheck | None:
        return make_stop(self.tokenizer, req.stop, self.ref.prompts.cursor_line(req.prefix)[0])


def run_bench(args: argparse.Namespace) -> dict:
    """`codeswift bench`: every method on every request, then the report (see report.py)."""
    from .report import report
    console = Console(stderr=True, width=140)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load(args, console)
    warm_up(run)
    calibration = calibrate(run) if args.calibrate else []
    run.meta = describe(run, calibration)
    rows, run.meta["interrupted"] = measure(run)
    return report(rows, run.meta, run.methods, Path(args.out), console)


# -- setup --------------------------------------------------------------------------------
def load(args: argparse.Namespace, console: Console) -> BenchRun:
    """Parse the methods, load the tasks, then the models and an engine per codeswift method."""
    methods = parse_methods(_method_spec(args, console))
    require_server(methods)                  # before any model loads: say how to build the server
    if args.mode == "long":
        tasks = long_tasks(load_tasks(args.tasks, None, _kinds(args)), args.head_lines)
        tasks = spread(tasks, args.limit) if args.limit else tasks
    else:
        tasks = load_tasks(args.tasks, args.limit, _kinds(args))
    _check_penalty(args, methods)
    if not tasks:
        raise BadInputError("no tasks selected")
    budget = PromptBudget(prefix=args.prefix_tokens, suffix=args.suffix_tokens)
    base = EngineConfig(model=args.model, device=args.device, dtype=args.dtype, corpus_dir=args.corpus,
                        sources=ALL_SOURCES, prompt=budget, heal_whitespace=not args.no_heal,
                        heal_word=False,       # token healing's first-token rule: the peers have none
                        persist_stats=False)           # every run learns afresh (see --calibrate)
    # The reference engine when no codeswift method runs: it only builds prompts and texts.
    prompts_only = EngineConfig(measure_cost=False, prompt=budget, heal_whitespace=base.heal_whitespace,
                                heal_word=False)
    engines: dict[str, Engine] = {}
    ref, model = None, None
    if any(not is_llamacpp(m) for m in methods):
        model, tok, path = load_model(args.model, args.device, args.dtype)
        engines.update({m: Engine.from_hf(model, tok, engine_config(m, base), model_id=path)
                        for m in methods if m.startswith("codeswift") and not is_llamacpp(m)})
        ref = next(iter(engines.values()), None) or Engine.from_hf(model, tok, prompts_only, model_id=path)
        console.print(f"model {path} on {ref.backend.device} ({ref.backend.dtype})")
    lcpp = None
    if any(is_llamacpp(m) for m in methods):
        lcpp = LlamaCppSide(args.gguf or args.model, methods, args.threads, getattr(args, "server_draft", 6),
                            server_lookup=getattr(args, "server_lookup", 3) or None)
        engines.update({m: Engine(b, lcpp.tokenizer, engine_config(m, base), model_id=lcpp.model_id)
                        for m, b in lcpp.backends.items()})
        lref = lcpp.ar or next(iter(lcpp.backends.values()))
        console.print(f"llama.cpp model {lcpp.gguf} on {lref.device} ({lref.dtype})")
        if ref is None:              # prompts only: the same tokenizer and budget for every method
            ref = Engine(lref, lcpp.tokenizer, prompts_only, lcpp.model_id)
    console.print(f"{len(tasks)} tasks; mode {args.mode}; methods {', '.join(methods)}")
    return BenchRun(args, console, methods, tasks, ref, model, engines, lcpp)


def _method_spec(args: argparse.Namespace, console: Console) -> str:
    if getattr(args, "backend", "auto") == "llamacpp" and args.methods == "ar,pld,codeswift":
        return ",".join(["llamacpp-ar", "llamacpp-pld", "codeswift-llamacpp",    # the same comparison on
                         *default_server_methods(console.print)])               # llama.cpp (+ llama-server)
    return args.methods


def _check_penalty(args: argparse.Namespace, methods: list[str]) -> None:
    if not 1.0 <= args.penalty <= 3.0 or args.penalty_window < 0:
        raise BadInputError("--penalty must be in 1..3 and --penalty-window >= 0")
    if args.penalty == 1.0:
        return
    peers = [m for m in methods if m not in ("ar", "llamacpp-ar") and not m.startswith("codeswift")]
    if peers:
        raise BadInputError(f"--penalty: {', '.join(peers)} cannot apply codeswift's penalty; "
                            "run codeswift* methods (their references ar / llamacpp-ar are penalised too)")
    if args.penalty_window and "ar" in methods:
        raise BadInputError("--penalty-window: transformers' repetition_penalty (ar) looks at all tokens; "
                            "use --penalty-window 0 or only llama.cpp methods")


def _kinds(args: argparse.Namespace) -> set[str] | None:
    return set(args.kinds.split(",")) if args.kinds else None


def describe(run: BenchRun, calibration: list[str]) -> dict:
    """results.json's "meta": what was run, on what, with which settings."""
    args, ref, lcpp = run.args, run.ref, run.lcpp
    return {"model": args.model, "gguf": str(lcpp.gguf) if lcpp else None, "mode": args.mode,
            "device": ref.backend.device, "dtype": ref.backend.dtype,
            "max_tokens": args.max_tokens, "tasks": args.tasks, "methods": run.methods,
            "prefix_tokens": args.prefix_tokens, "suffix_tokens": args.suffix_tokens,
            "cost_curve_ms": {m: e.cost.to_json() for m, e in run.engines.items()},
            "backends": {m: f"{e.backend.name} {e.backend.device} {e.backend.dtype}" for m, e in run.engines.items()},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
            "torch_threads": torch.get_num_threads(), "session_follow": args.session_follow,
            "calibration_tasks": calibration, "penalty": args.penalty, "penalty_window": args.penalty_window,
            "head_lines": args.head_lines if args.mode == "long" else None,
            "llama_server": lcpp.servers.describe() if lcpp and lcpp.servers else None}


def warm_up(run: BenchRun) -> None:
    req = CompletionRequest(prefix="def add(a, b):\n    return", max_tokens=4, doc_id="warm-up")
    prompt = run.ref.prompts.build(req)
    for m in run.methods:
        run_method(run, m, prompt, req, session=False)
        if m in run.engines:
            run.engines[m].reset_caches()


def calibrate(run: BenchRun) -> list[str]:
    """Let the engines learn per-kind draft acceptance (rates, not content) on `--calibrate`
    tasks that are not measured, as an engine in use for a while has; then forget all content."""
    args = run.args
    ids = {t.task_id for t in run.tasks}
    pool = [t for t in load_tasks(args.tasks, None, _kinds(args)) if t.task_id not in ids]
    if not pool:
        return []
    chosen = spread(pool, args.calibrate)
    run.console.print(f"calibrating draft acceptance on {len(chosen)} other tasks (not measured)")
    ws = RepoWorkspace()
    try:
        for task in chosen:
            repo = ws.prepare(task) if not args.no_repo else None
            for e in run.engines.values():
                e.attach_repo(str(repo) if repo else None)
                _rehearse(run, e, task)
                e.reset_caches()
    finally:
        ws.close()
    return [t.task_id for t in chosen]


def _rehearse(run: BenchRun, engine: Engine, task: Task) -> None:
    """The requests of `task` on one engine, unmeasured."""
    ask = lambda prefix: engine.complete(run.request(task, prefix))   # noqa: E731
    if run.follows_model and run.args.session_follow == "mix":
        mixed_session(task.gold, ask(task.prefix).text, run.args.session_requests,
                      lambda typed: ask(task.prefix + typed).text)
    elif run.follows_model:
        shown = ask(task.prefix).text
        for c in word_cuts(shown, run.args.session_requests):
            ask(task.prefix + shown[:c])
    else:
        for r in build_requests(task, run.args.mode, run.args.session_requests):
            ask(r.prefix)


# -- measuring ----------------------------------------------------------------------------
def measure(run: BenchRun) -> tuple[list[dict], bool]:
    """Rows of every task's requests, and whether the run was interrupted (Ctrl-C keeps the
    tasks measured so far)."""
    from rich.progress import Progress
    ws = RepoWorkspace()
    rows: list[dict] = []
    try:
        with Progress(console=run.console) as prog:
            bar = prog.add_task("tasks", total=len(run.tasks))
            for task in run.tasks:
                task_rows = run_task(run, task, ws)
                rows += task_rows
                prog.advance(bar)
                if not run.console.is_terminal:      # no live bar in logs: one line per task instead
                    run.console.print(f"{task.task_id}: " + ", ".join(
                        f"{m} {sum(r['decode_ms'] for r in task_rows if r['method'] == m):.0f} ms"
                        for m in run.methods) + f" (identical: {all(r['identical'] for r in task_rows)})")
    except KeyboardInterrupt:
        run.console.print("[yellow]interrupted: writing what was measured so far[/]")
        return rows, True
    finally:
        ws.close()
        if run.lcpp:
            run.lcpp.close()            # (servers also stop at exit if anything before this raised)
    return rows, False


def run_task(run: BenchRun, task: Task, ws: RepoWorkspace) -> list[dict]:
    repo = ws.prepare(task) if not run.args.no_repo else None
    for e in run.engines.values():
        e.attach_repo(str(repo) if repo else None)
        e.reset_caches()               # no state is shared across tasks
    if run.lcpp:
        run.lcpp.reset()
    # the editor's completion cache: codeswift's LSP in front of each engine, and llama.vscode's
    # result cache in front of plain llama-server (the peer that keeps state across requests)
    run.caches = ({m: CompletionCache() for m in (*run.engines, *(m for m in run.methods if m == "llama-server"))}
                  if run.session else {})
    follow = run.follows_model
    rows = []
    mode = "cold" if follow or run.args.mode == "long" else run.args.mode
    for req in build_requests(task, mode, run.args.session_requests):
        rows += run_request(run, req)
    if follow:
        rows += (follow_mixed if run.args.session_follow == "mix" else follow_model)(run, task, rows)
    return rows


def follow_mixed(run: BenchRun, task: Task, first: list[dict]) -> list[dict]:
    """Session where the developer accepts each suggestion's words while they are what they
    meant to write (the gold), types the gold where the suggestion goes wrong, and asks again
    after each accepted or typed chunk (see `mixed_step`)."""
    main_ref = _main_reference(run)
    rows: list[dict] = []

    def ask(typed: str) -> str:
        index = (len(first) + len(rows)) // len(run.methods)
        rows.extend(run_request(run, Request(task, task.prefix + typed, task.suffix, index, "mix")))
        return next(r["text"] for r in rows[-len(run.methods):] if r["method"] == main_ref)
    mixed_session(task.gold, _first_text(first, main_ref), run.args.session_requests, ask)
    return rows


def _main_reference(run: BenchRun) -> str:
    """The reference method whose suggestions a simulated developer reads."""
    return "ar" if "ar" in run.methods else "llamacpp-ar"


def _first_text(first: list[dict], method: str) -> str:
    return next(r["text"] for r in first if r["method"] == method and r["request"] == 0)


def follow_model(run: BenchRun, task: Task, first: list[dict]) -> list[dict]:
    """Session where the developer accepts the model's own suggestion word by word (VS Code's
    "Accept Next Word" on an inline suggestion), asking again after some of those words:
    requests at word ends spread evenly over the first suggestion of the main reference method."""
    shown = _first_text(first, _main_reference(run))
    rows = []
    for i, c in enumerate(word_cuts(shown, run.args.session_requests)):
        rows += run_request(run, Request(task, task.prefix + shown[:c], task.suffix,
                                         len(first) // len(run.methods) + i, "model"))
    return rows


def run_request(run: BenchRun, r: Request) -> list[dict]:
    """Every method on one request (same prompt), a row each, compared with its reference."""
    task = r.task
    req = run.request(task, r.prefix)
    prompt = run.ref.prompts.build(req)
    results = {m: run_method(run, m, prompt, req, session=run.session) for m in run.methods}
    rows = []
    for m, res in results.items():
        toks = res["tokens"]
        base = results[reference(m)]["tokens"]
        same = toks == base
        row = {"task_id": task.task_id, "kind": task.kind, "request": r.index, "method": m,
               "follows": r.follows, "typed_chars": len(r.prefix) - len(task.prefix),
               "prompt_tokens": len(prompt), "generated": len(toks), "identical": same,
               **{k: v for k, v in res.items() if k != "tokens"}}
        if not same:
            j = first_difference(toks, base)
            row.update(divergence(j, _top2_gap(run, m, prompt, base, j)))
        if m == reference(m):
            row["text"] = text = run.ref.text_of(toks, req)
            row.update(gold_quality(text, r.prefix[len(task.prefix):], task.gold))
        if run.args.mode == "long":
            row.update(distinct_n(toks))
            row["peak_rss_mb"] = peak_rss_mb()
        if m in run.caches:
            row.update(served(run.caches[m], r, req, run.ref.text_of(toks, req), res))
        rows.append(row)
    return rows


def served(cache: CompletionCache, r: Request, req: CompletionRequest, text: str, res: dict) -> dict:
    """The request as the editor serves it: from the completion cache when the developer typed
    along the last suggestion or asked again at the same place (no forward pass: the LSP with
    verifyCached false, llama.vscode), else by the model; and whether a cached answer is the one
    the model gives now. `verified_ms`: the LSP's default (verifyCached true), which serves only
    same-place hits from the cache and has the engine verify what was typed along."""
    shown = postprocess(text, r.prefix, r.suffix, req.stop, req.language)
    found = next(iter(cache.lookup(req.doc_id or "", r.prefix, r.suffix)), None)
    hit = found[0].text[found[1]:] if found is not None else None
    cache.put(req.doc_id or "", r.prefix, r.suffix, shown)
    model_ms = res["prefill_ms"] + res["decode_ms"]
    return {"cache_hit": hit is not None, "cache_identical": hit == shown,
            "served_ms": 0.0 if hit is not None else model_ms,
            "verified_ms": 0.0 if found is not None and found[1] == 0 else model_ms}


def _top2_gap(run: BenchRun, method: str, prompt: list[int], base: list[int], j: int) -> float:
    """The reference model's top-2 logit gap before token j of the reference output `base`."""
    if is_llamacpp(method):
        return llamacpp.top2_gap(run.lcpp.ar, prompt + base[:j])
    return hf.top2_gap(run.model, prompt, base, j)


def run_method(run: BenchRun, m: str, prompt: list[int], req: CompletionRequest, session: bool) -> dict:
    """One method on one request: {"tokens", "prefill_ms", "decode_ms", "steps", "per_source", ...}."""
    eos = run.ref.prompts.stop_ids
    if m in ("ar", "pld"):
        return hf.run_generate(run.model, prompt, req.max_tokens, eos, run.stop_for(req), pld=(m == "pld"),
                               repetition_penalty=req.repetition_penalty)
    if m == "llamacpp-ar" and run.penalised:
        # llama.cpp's own sampler chain is not the same penalty: the reference is codeswift's
        # loop over the same GGUF without drafts (one token per step, penalised).
        engine = next(e for n, e in run.engines.items() if is_llamacpp(n))
        return run_engine(engine, CompletionRequest(**{**req.__dict__, "speculative": False}))
    if is_server(m):
        return run.lcpp.servers.run(m, prompt, req.max_tokens, eos, run.stop_for(req), session)
    if m in ("llamacpp-ar", "llamacpp-pld"):
        return run.lcpp.run_baseline(m, prompt, req, eos, run.stop_for(req), session)
    return run_engine(run.engines[m], CompletionRequest(**{**req.__dict__, "speculative": not m.endswith("-ar")}))


def run_engine(engine: Engine, req: CompletionRequest) -> dict:
    """A codeswift method: the engine's completion and its statistics."""
    pref = engine.source(PREF)
    answers = pref.answer_hits if isinstance(pref, PrefCache) else 0
    res = engine.complete(req)
    s = res.stats
    # prefill_ms is the prompt's KV less its last token, which the first verify step computes
    # with the first drafts (counted in decode_ms: conservative against the peers, whose prefill
    # yields the first token); ttft_ms is when the first token was known.
    return {"tokens": res.tokens, "prefill_ms": s["prefill_ms"], "decode_ms": s["decode_ms"],
            "ttft_ms": s.get("first_token_ms"), "step_tokens": s.get("step_tokens"),
            "remembered_answer": isinstance(pref, PrefCache) and pref.answer_hits > answers,
            "steps": s["steps"], "accepted_per_step": s["accepted_per_step"],
            "reused_prompt_tokens": s["reused_prompt_tokens"], "per_source": s["per_source"],
            "mean_tree_nodes": s["mean_tree_nodes"], "draft_ms": s["draft_ms"], "verify_ms": s["verify_ms"]}


def distinct_n(tokens: list[int], ns: tuple[int, ...] = (2, 3, 4)) -> dict:
    """Repetition of a long output: distinct n-grams / n-grams (1.0 = no n-gram repeats)."""
    out = {}
    for n in ns:
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        out[f"distinct_{n}"] = round(len(set(grams)) / len(grams), 4) if grams else None
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux: ru_maxrss in KiB)."""
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
