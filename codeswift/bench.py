"""`codeswift bench`: codeswift against plain greedy and prompt lookup, same model, one run.

Every method gets the same prompt, max tokens and stop rule for every request; methods are
interleaved per request so machine noise hits them alike. Outputs are compared token for
token with `ar` (plain `model.generate`); in bf16 a divergence is reported with the top-2
logit gap at its first token (a near-tie is numerics, anything else a bug).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from .bench_server import SERVER_METHODS, ServerPeers, default_server_methods, is_server, require_server
from .bench_tasks import RepoWorkspace, Task, load_tasks
from .engine import ALL_SOURCES, Engine, EngineConfig
from .sources import CONTEXT, CORPUS, PREF, REPO
from .errors import BadInputError
from .loop import finalize
from .stops import make_stop
from .types import CompletionRequest

BASELINES = ("ar", "pld", "llamacpp-ar", "llamacpp-pld")
ABLATIONS = {"-repo": REPO, "-corpus": CORPUS, "-cache": PREF, "-context": CONTEXT}   # method suffix -> source
OTHER_ABLATIONS = ("-timing", "-tree", "-kv")
NEAR_TIE = 0.5            # top-2 logit gap below which bf16/fp32 reassociation may flip argmax


@dataclass
class Request:
    task: Task
    prefix: str
    suffix: str
    index: int                         # request number within the task (session mode)
    follows: str = "gold"              # what the developer types: the gold span, or the model's suggestion


# -- plain transformers baselines ---------------------------------------------------------
class _FirstCall(LogitsProcessor):
    """Records when the first logits arrive (= prefill done) and counts verification calls."""

    def __init__(self):
        self.first: float | None = None

    def __call__(self, input_ids, scores):
        if self.first is None:
            self.first = time.perf_counter()
        return scores


class _Stop(StoppingCriteria):
    def __init__(self, check, prompt_len):
        self.check, self.prompt_len = check, prompt_len

    def __call__(self, input_ids, scores, **kw):
        done = self.check(input_ids[0, self.prompt_len:].tolist()) is not None
        return torch.tensor([done], device=input_ids.device)


def run_generate(engine: Engine, prompt: list[int], req: CompletionRequest, pld: bool) -> dict:
    """`ar` (plain greedy) or `pld` (transformers prompt lookup) on the engine's model."""
    model, stops = engine.model, engine.prompts.stop_ids
    stop = make_stop(engine.tokenizer, req.stop, engine.prompts.cursor_line(req.prefix)[0])
    timer = _FirstCall()
    kwargs = dict(max_new_tokens=req.max_tokens, do_sample=False, eos_token_id=sorted(stops),
                  pad_token_id=sorted(stops)[0], logits_processor=LogitsProcessorList([timer]))
    if stop is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Stop(stop, len(prompt))])
    if pld:
        kwargs["prompt_lookup_num_tokens"] = 10
    ids = torch.tensor([prompt], device=model.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)[0, len(prompt):].tolist()
    t1 = time.perf_counter()
    tokens, _ = finalize(out, req.max_tokens, stops, stop)
    prefill = ((timer.first or t1) - t0) * 1000
    return {"tokens": tokens, "prefill_ms": prefill, "decode_ms": (t1 - t0) * 1000 - prefill,
            "steps": None, "per_source": {}}


def run_engine(engine: Engine, req: CompletionRequest) -> dict:
    res = engine.complete(req)
    s = res.stats
    return {"tokens": res.tokens, "prefill_ms": s["prefill_ms"], "decode_ms": s["decode_ms"],
            "steps": s["steps"], "accepted_per_step": s["accepted_per_step"],
            "reused_prompt_tokens": s["reused_prompt_tokens"], "per_source": s["per_source"],
            "mean_tree_nodes": s["mean_tree_nodes"], "draft_ms": s["draft_ms"], "verify_ms": s["verify_ms"]}


def quality(text: str, gold: str) -> dict:
    """Exact match and edit similarity of a completion (cut by its stop rule) against the rest
    of the gold span, ignoring surrounding whitespace."""
    import difflib
    a, b = text.strip(), gold.strip()
    return {"exact_match": a == b, "edit_similarity": round(difflib.SequenceMatcher(None, a, b).ratio(), 4)}


def top2_gap(engine: Engine, prompt: list[int], out: list[int], j: int) -> float:
    """Top-2 logit gap of the model before token j of the reference output."""
    ids = torch.tensor([prompt + out[:j]], device=engine.model.device)
    with torch.inference_mode():
        logits = engine.model(ids, logits_to_keep=1).logits[0, -1].float()
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])


# -- the run ------------------------------------------------------------------------------
def is_llamacpp(method: str) -> bool:
    """llama.cpp methods (GGUF verifier, llama-server peers included) form their own family
    with their own references."""
    return "llamacpp" in method or is_server(method)


def reference(method: str, kind: str = "ar") -> str:
    """The plain-greedy (`ar`) or prompt-lookup (`pld`) baseline a method is compared with."""
    return f"llamacpp-{kind}" if is_llamacpp(method) else kind


def parse_methods(spec: str) -> list[str]:
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    known = ["ar", "pld", "codeswift", "codeswift-ar", *(f"codeswift{a}" for a in (*ABLATIONS, *OTHER_ABLATIONS)),
             "llamacpp-ar", "llamacpp-pld", "codeswift-llamacpp",
             *(f"codeswift-llamacpp{a}" for a in (*ABLATIONS, *OTHER_ABLATIONS)), *SERVER_METHODS]
    for m in methods:
        if m not in known:
            raise BadInputError(f"unknown method {m!r}; known: {', '.join(known)}")
    if len(set(methods)) != len(methods):
        raise BadInputError(f"a method is listed twice in {spec!r}")
    # Each family's plain greedy run is the reference for identical-output checks.
    for fam_ref, in_fam in (("llamacpp-ar", is_llamacpp), ("ar", lambda m: not is_llamacpp(m))):
        if any(in_fam(m) for m in methods) and fam_ref not in methods:
            methods.insert(0, fam_ref)
    return methods


def engine_config(method: str, base: EngineConfig) -> EngineConfig:
    cfg = EngineConfig(**base.__dict__)
    suffix = method[len("codeswift"):]
    if suffix.startswith("-llamacpp"):
        cfg.backend, suffix = "llamacpp", suffix[len("-llamacpp"):]
    if suffix in ABLATIONS:
        cfg.sources = tuple(s for s in cfg.sources if s != ABLATIONS[suffix])
    elif suffix == "-timing":
        cfg.timing = False
    elif suffix == "-tree":
        cfg.tree = False
    elif suffix == "-kv":
        cfg.kv_reuse = False
    return cfg


def build_requests(task: Task, mode: str, session_requests: int) -> list[Request]:
    if mode == "cold":
        return [Request(task, task.prefix, task.suffix, 0)]
    # Session: the developer types the gold span; the editor asks after each typed chunk.
    # Requests are spread over the span (first one before anything is typed).
    gold = task.gold
    cuts = sorted({int(round(i * len(gold) / session_requests)) for i in range(session_requests)})
    cuts = [c for c in cuts if c < len(gold)] or [0]
    return [Request(task, task.prefix + gold[:c], task.suffix, i) for i, c in enumerate(cuts)]


class _LlamaCpp:
    """The llama.cpp side of a run: one GGUF, a backend per method (own KV, so no method
    inherits another's prompt cache) and llama-cpp-python's prompt-lookup `Llama`."""

    def __init__(self, args, methods: list[str]):
        from .backends.llamacpp import LlamaCppBackend, load_gguf_tokenizer, require_usable, resolve_gguf
        from .bench_llamacpp import make_pld_llama
        self.gguf = resolve_gguf(args.gguf or args.model)
        require_usable(self.gguf)                # a crashing build must not take the run down
        self.tokenizer = load_gguf_tokenizer(args.gguf or args.model, self.gguf)
        make = lambda: LlamaCppBackend(self.gguf, n_ctx=4096, n_threads=args.threads)   # noqa: E731
        self.ar = make() if "llamacpp-ar" in methods else None
        self.backends = {m: make() for m in methods if m.startswith("codeswift-llamacpp")}
        self.pld = make_pld_llama(self.gguf, n_threads=args.threads) if "llamacpp-pld" in methods else None
        self.model_id = f"llamacpp:{self.gguf.resolve()}"
        self.servers = ServerPeers(self.gguf, methods, args.threads, getattr(args, "server_draft", 6),
                                   lookup=getattr(args, "server_lookup", 3) or None,
                                   n_ctx=4096) if any(is_server(m) for m in methods) else None

    def close(self) -> None:
        if self.servers:
            self.servers.close()


def run_bench(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.progress import Progress
    from .bench_report import report
    from .models import load_model
    from .prompt import PromptBudget

    console = Console(stderr=True, width=140)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = args.methods
    if getattr(args, "backend", "auto") == "llamacpp" and spec == "ar,pld,codeswift":
        spec = ",".join(["llamacpp-ar", "llamacpp-pld", "codeswift-llamacpp",    # the same comparison on
                         *default_server_methods(console.print)])               # llama.cpp (+ llama-server)
    methods = parse_methods(spec)
    require_server(methods)                  # before any model loads: say how to build the server
    tasks = load_tasks(args.tasks, args.limit, set(args.kinds.split(",")) if args.kinds else None)
    if not tasks:
        raise BadInputError("no tasks selected")
    budget = PromptBudget(prefix=args.prefix_tokens, suffix=args.suffix_tokens)
    base = EngineConfig(model=args.model, device=args.device, dtype=args.dtype, corpus_dir=args.corpus,
                        sources=ALL_SOURCES, prompt=budget, heal_whitespace=not args.no_heal,
                        persist_stats=False)           # every run learns afresh (see --calibrate)
    # The reference engine when no codeswift method runs: it only builds prompts and texts.
    prompts_only = EngineConfig(measure_cost=False, prompt=budget, heal_whitespace=base.heal_whitespace)
    engines: dict[str, Engine] = {}
    ref: Engine | None = None
    if any(not is_llamacpp(m) for m in methods):
        model, tok, path = load_model(args.model, args.device, args.dtype)
        engines.update({m: Engine(model, tok, engine_config(m, base), model_id=path)
                        for m in methods if m.startswith("codeswift") and not is_llamacpp(m)})
        ref = next(iter(engines.values()), None) or Engine(model, tok, prompts_only, model_id=path)
        console.print(f"model {path} on {ref.backend.device} ({ref.backend.dtype})")
    lcpp = _LlamaCpp(args, methods) if any(is_llamacpp(m) for m in methods) else None
    if lcpp:
        engines.update({m: Engine(b, lcpp.tokenizer, engine_config(m, base), model_id=lcpp.model_id)
                        for m, b in lcpp.backends.items()})
        lref = lcpp.ar or next(iter(lcpp.backends.values()))
        console.print(f"llama.cpp model {lcpp.gguf} on {lref.device} ({lref.dtype})")
        if ref is None:              # prompts only: the same tokenizer and budget for every method
            ref = Engine(lref, lcpp.tokenizer, prompts_only, lcpp.model_id)
    console.print(f"{len(tasks)} tasks; mode {args.mode}; methods {', '.join(methods)}")
    _warm_up(ref, engines, lcpp, methods)
    calibration = _calibrate(engines, tasks, args, console) if args.calibrate else []
    ws = RepoWorkspace()
    rows: list[dict] = []
    meta = {"model": args.model, "gguf": str(lcpp.gguf) if lcpp else None, "mode": args.mode,
            "device": ref.backend.device, "dtype": ref.backend.dtype,
            "max_tokens": args.max_tokens, "tasks": args.tasks, "methods": methods,
            "prefix_tokens": args.prefix_tokens, "suffix_tokens": args.suffix_tokens,
            "cost_curve_ms": {m: e.cost.to_json() for m, e in engines.items()},
            "backends": {m: f"{e.backend.name} {e.backend.device} {e.backend.dtype}" for m, e in engines.items()},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
            "torch_threads": torch.get_num_threads(), "session_follow": args.session_follow,
            "calibration_tasks": calibration,
            "llama_server": lcpp.servers.describe() if lcpp and lcpp.servers else None}
    interrupted = False
    try:
        with Progress(console=console) as prog:
            bar = prog.add_task("tasks", total=len(tasks))
            for task in tasks:
                repo = ws.prepare(task) if not args.no_repo else None
                for e in engines.values():
                    e.attach_repo(str(repo) if repo else None)
                    e.reset_caches()               # no state is shared across tasks
                if lcpp and lcpp.ar:
                    lcpp.ar.store.clear()
                if lcpp and lcpp.servers:
                    lcpp.servers.reset()
                task_rows = []
                follow = _follows_model(args)
                for req in build_requests(task, "cold" if follow else args.mode, args.session_requests):
                    task_rows += _run_request(ref, engines, lcpp, methods, req, args)
                if follow:
                    task_rows += _follow_model(ref, engines, lcpp, methods, task, task_rows, args)
                rows += task_rows
                prog.advance(bar)
                if not console.is_terminal:      # no live bar in logs: one line per task instead
                    console.print(f"{task.task_id}: " + ", ".join(
                        f"{m} {sum(r['decode_ms'] for r in task_rows if r['method'] == m):.0f} ms"
                        for m in methods) + f" (identical: {all(r['identical'] for r in task_rows)})")
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: writing what was measured so far[/]")
    finally:
        ws.close()
        if lcpp:
            lcpp.close()            # (servers also stop at exit if anything before this raised)
    meta["interrupted"] = interrupted
    return report(rows, meta, methods, Path(args.out), console)


def _calibrate(engines: dict, measured: list[Task], args, console) -> list[str]:
    """Let the engines learn per-kind draft acceptance (rates, not content) on `args.calibrate`
    tasks that are not measured, as an engine in use for a while has; then forget all content."""
    ids = {t.task_id for t in measured}
    pool = [t for t in load_tasks(args.tasks, None, set(args.kinds.split(",")) if args.kinds else None)
            if t.task_id not in ids]
    if not pool:
        return []
    from .bench_tasks import _spread
    chosen = _spread(pool, args.calibrate)
    console.print(f"calibrating draft acceptance on {len(chosen)} other tasks (not measured)")
    ws = RepoWorkspace()
    try:
        for task in chosen:
            repo = ws.prepare(task) if not args.no_repo else None
            for e in engines.values():
                e.attach_repo(str(repo) if repo else None)
                ask = lambda prefix: e.complete(_completion_request(task, prefix, args))   # noqa: E731
                if _follows_model(args):
                    shown = ask(task.prefix).text
                    for c in word_cuts(shown, args.session_requests):
                        ask(task.prefix + shown[:c])
                else:
                    for r in build_requests(task, args.mode, args.session_requests):
                        ask(r.prefix)
                e.reset_caches()
    finally:
        ws.close()
    return [t.task_id for t in chosen]


def _warm_up(ref: Engine, engines: dict, lcpp, methods: list[str]) -> None:
    req = CompletionRequest(prefix="def add(a, b):\n    return", max_tokens=4, doc_id="warm-up")
    prompt = ref.prompts.build(req)
    for m in methods:
        _run_method(m, ref, engines, lcpp, prompt, req, session=False)
        if m in engines:
            engines[m].reset_caches()


def _run_method(m: str, ref: Engine, engines: dict, lcpp, prompt: list[int], req: CompletionRequest,
                session: bool) -> dict:
    from .bench_llamacpp import run_llamacpp_ar, run_llamacpp_pld
    if m in ("ar", "pld"):
        return run_generate(ref, prompt, req, pld=(m == "pld"))
    if is_server(m):
        stop = make_stop(ref.tokenizer, req.stop, ref.prompts.cursor_line(req.prefix)[0])
        return lcpp.servers.run(m, prompt, req.max_tokens, ref.prompts.stop_ids, stop, session)
    if m in ("llamacpp-ar", "llamacpp-pld"):
        stop = make_stop(ref.tokenizer, req.stop, ref.prompts.cursor_line(req.prefix)[0])
        eos = ref.prompts.stop_ids
        # In a session both reuse their prompt KV, as llama-server's cache_prompt does.
        r = (run_llamacpp_ar(lcpp.ar, prompt, req.max_tokens, eos, stop, key=req.doc_id if session else None)
             if m == "llamacpp-ar" else run_llamacpp_pld(lcpp.pld, prompt, req.max_tokens, eos, stop, reuse=session))
        return {**r, "steps": None, "per_source": {}}
    return run_engine(engines[m], CompletionRequest(**{**req.__dict__, "speculative": not m.endswith("-ar")}))


def _completion_request(task: Task, prefix: str, args) -> CompletionRequest:
    """The request an editor sends at the end of `prefix` in the task's file."""
    return CompletionRequest(prefix=prefix, suffix=task.suffix, path=task.path, language=task.language,
                             max_tokens=args.max_tokens, stop=args.stop or task.stop, doc_id=task.task_id)


def _follows_model(args) -> bool:
    return args.mode == "session" and args.session_follow == "model"


def _run_request(ref: Engine, engines: dict, lcpp, methods: list[str], r: Request, args) -> list[dict]:
    task = r.task
    req = _completion_request(task, r.prefix, args)
    prompt = ref.prompts.build(req)
    results = {m: _run_method(m, ref, engines, lcpp, prompt, req, session=args.mode == "session")
               for m in methods}
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
            j = next((i for i, (a, b) in enumerate(zip(toks, base)) if a != b), min(len(toks), len(base)))
            row["diverge_at"] = j
            if is_llamacpp(m):
                from .bench_llamacpp import top2_gap as lcpp_gap
                row["top2_gap"] = round(lcpp_gap(lcpp.ar, prompt + base[:j]), 4)
            else:
                row["top2_gap"] = round(top2_gap(ref, prompt, base, j), 4)
            row["near_tie"] = row["top2_gap"] < NEAR_TIE
        if m == reference(m):
            row["text"] = text = ref.text_of(toks, req)
            typed = r.prefix[len(task.prefix):]
            if task.gold.startswith(typed):       # quality vs gold only while the gold is typed
                row.update(quality(text, task.gold[len(typed):]))
        rows.append(row)
    return rows


def _follow_model(ref: Engine, engines: dict, lcpp, methods: list[str], task: Task, first: list[dict],
                  args) -> list[dict]:
    """Session where the developer accepts the model's own suggestion word by word (VS Code's
    "Accept Next Word" on an inline suggestion), asking again after some of those words:
    requests at word ends spread evenly over the first suggestion of the main reference method."""
    main_ref = "ar" if "ar" in methods else "llamacpp-ar"
    shown = next(r["text"] for r in first if r["method"] == main_ref and r["request"] == 0)
    rows = []
    for i, c in enumerate(word_cuts(shown, args.session_requests)):
        rows += _run_request(ref, engines, lcpp, methods,
                             Request(task, task.prefix + shown[:c], task.suffix, len(first) // len(methods) + i,
                                     "model"), args)
    return rows


def word_cuts(shown: str, n: int) -> list[int]:
    """Up to n-1 offsets in `shown` at word ends (what "Accept Next Word" stops at), spread evenly."""
    import re
    ends = [m.end() for m in re.finditer(r"\s*(\w+|[^\w\s])", shown) if m.end() < len(shown)]
    return sorted({ends[int(i * len(ends) / n)] for i in range(1, n)}) if ends else []
