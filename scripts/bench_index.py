"""Datastore benchmarks: index build, incremental update, draft lookup, embedder choice.

    python scripts/bench_index.py index    [--model M]   # ~38k-line tree (rich) + ~100k-line stdlib subset
    python scripts/bench_index.py update   [--model M]   # update_file() while typing
    python scripts/bench_index.py lookup   [--model M]   # RepoIndex.lookup per decoding step
    python scripts/bench_index.py embedders [--model M] [--minilm]   # retrieval quality / time
    python scripts/bench_index.py sources  [--corpus DIR]   # replay repo-dev tasks through each source

Numbers go in reports, never into tests. Source trees are read in place (a stdlib subset is
a folder of symlinks) or copied to a temporary folder when the benchmark edits them.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datastore.corpus import Corpus                     # noqa: E402
from datastore.embedders import HashedEmbedder          # noqa: E402
from datastore.repo_index import RepoIndex              # noqa: E402
from datastore.tokens import encode                     # noqa: E402
from datastore.walker import walk_files                 # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_PACKAGES = ["asyncio", "email", "json", "http", "logging", "unittest", "xml", "concurrent",
                   "importlib", "urllib", "multiprocessing", "sqlite3", "ctypes", "html", "wsgiref",
                   "xmlrpc", "dbm", "collections", "zoneinfo", "tomllib", "curses", "re"]
REPO_DEV = Path(__file__).resolve().parents[2] / "shared" / "bench" / "repo-dev"


def lines_of(root: Path) -> int:
    return sum(p.path.read_bytes().count(b"\n") for p in walk_files(root))


def stdlib_tree(tmp: Path, target_lines: int = 100_000) -> Path:
    """A folder of symlinks to stdlib packages adding up to about `target_lines`."""
    root = tmp / "stdlib-subset"
    root.mkdir()
    total = 0
    for name in STDLIB_PACKAGES:
        src = STDLIB / name
        if not src.is_dir() or total >= target_lines:
            continue
        (root / name).symlink_to(src)
        total += lines_of(src)
    return root


def rich_tree() -> Path:
    import rich
    return Path(rich.__file__).parent


def pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def bench_index(tok, args) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, root in (("rich", rich_tree()), ("stdlib-subset", stdlib_tree(tmp))):
            idx_dir = tmp / f"idx-{name}"
            t0 = time.perf_counter()
            index = RepoIndex.open_or_build(root, tok, out_dir=idx_dir, progress=False)
            fresh = time.perf_counter() - t0
            t0 = time.perf_counter()
            RepoIndex.open_or_build(root, tok, out_dir=idx_dir, progress=False)
            reopen = time.perf_counter() - t0
            r = index.report
            out[name] = {"files": r.files, "lines": lines_of(root), "tokens": r.tokens, "chunks": r.chunks,
                         "symbols": r.symbols, "fresh_s": round(fresh, 2), "reopen_unchanged_s": round(reopen, 2),
                         "index_mb": round((idx_dir / "repo-index.npz").stat().st_size / 2**20, 1)}
            if name == "rich":                      # incremental: edit one file of a copy
                copy = tmp / "rich-copy"
                shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
                RepoIndex.open_or_build(copy, tok, out_dir=tmp / "idx-copy", progress=False)
                f = copy / "console.py"
                f.write_text(f.read_text() + "\n# edited\n")
                t0 = time.perf_counter()
                again = RepoIndex.open_or_build(copy, tok, out_dir=tmp / "idx-copy", progress=False)
                out[name]["one_file_changed_s"] = round(time.perf_counter() - t0, 2)
                out[name]["one_file_changed_processed"] = again.report.processed
            print(name, out[name], flush=True)
    return out


def bench_update(tok, args) -> dict:
    """update_file latency: first edit of a file (full tokenization) and keystrokes after."""
    root = rich_tree()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        index = RepoIndex.open_or_build(root, tok, out_dir=Path(tmp) / "idx", progress=False)
        rng = random.Random(0)
        for rel in ("console.py", "progress.py", "table.py", "color.py"):
            text = (root / rel).read_text()
            t0 = time.perf_counter()
            index.update_file(rel, text + "\n")
            first = time.perf_counter() - t0
            times, cpu = [], []
            pos = len(text) // 2
            for _ in range(args.edits):                    # typing: one char after another
                pos = pos + 1 if rng.random() < 0.9 else rng.randrange(len(text))
                text = text[:pos] + rng.choice("abcxyz_ ") + text[pos:]
                t0, c0 = time.perf_counter(), time.thread_time()
                index.update_file(rel, text)
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
            out[rel] = {"lines": text.count("\n"), "first_ms": round(first * 1000, 1),
                        "edit_wall_p50_ms": round(pct(times, 50), 1), "edit_wall_p95_ms": round(pct(times, 95), 1),
                        "edit_cpu_p50_ms": round(pct(cpu, 50), 1), "edit_cpu_p95_ms": round(pct(cpu, 95), 1)}
            print(rel, out[rel], flush=True)
    return out


def bench_lookup(tok, args) -> dict:
    """Per-step lookup: contexts walk through files that are excluded from the index (unseen
    code), with and without an overlay of 3 edited files."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = stdlib_tree(tmp)
        index = RepoIndex.open_or_build(root, tok, out_dir=tmp / "idx", progress=False)
        files = [f.rel for f in index.store.files if f.rel.endswith(".py")]
        rng = random.Random(1)
        picks = rng.sample(files, 20)
        for label, overlay in (("main", []), ("main+3 overlay files", picks[:3])):
            for rel in overlay:
                index.update_file(rel, (root / rel).read_text() + "\n# edited\n")
            for min_match in (1, 2):
                times, cpu, lens = [], [], []
                for rel in picks[3:]:
                    ids = encode(tok, (root / rel).read_text())
                    for _ in range(40):
                        p = rng.randrange(16, max(17, len(ids) - 1))
                        for s in range(8):                 # 8 consecutive decoding steps
                            ctx = ids[:p + s]
                            t0, c0 = time.perf_counter(), time.thread_time()
                            got = index.lookup(ctx, 16, 8, exclude_path=rel, min_match=min_match)
                            times.append(time.perf_counter() - t0)
                            cpu.append(time.thread_time() - c0)
                            lens.append(got[0].match_len if got else 0)
                key = f"{label}, min_match={min_match}"
                out[key] = {"steps": len(times), "wall_p50_ms": round(pct(times, 50), 3),
                            "wall_p95_ms": round(pct(times, 95), 3), "cpu_p50_ms": round(pct(cpu, 50), 3),
                            "cpu_p95_ms": round(pct(cpu, 95), 3), "cpu_p99_ms": round(pct(cpu, 99), 3),
                            "mean_match_len": round(float(np.mean(lens)), 2)}
                print(key, out[key], flush=True)
    return out


def _ngrams(seq, n=4) -> set:
    return {tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)}


def bench_embedders(tok, args) -> dict:
    """Retrieval quality on the repo-dev tasks: corpus = the 4 repositories; for each task the
    K units most similar to the code around the cursor (task file excluded); quality = share
    of the gold completion's token 4-grams found in those units."""
    tasks = [json.loads(line) for line in (REPO_DEV / "tasks.jsonl").read_text().splitlines()]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        srcs = []
        for tgz in sorted((REPO_DEV / "repos").glob("*.tar.gz")):
            with tarfile.open(tgz) as tf:
                tf.extractall(tmp / "src", filter="data")
        srcs = sorted(p for p in (tmp / "src").iterdir() if p.is_dir())
        names = [f"hashed-{d}" for d in args.dims.split(",") if d] + (["minilm"] if args.minilm else [])
        for name in names + ["random"]:
            kind, _, dim = name.partition("-")
            emb = HashedEmbedder(dim=int(dim)) if kind == "hashed" else "minilm" if kind == "minilm" else "hashed"
            t0 = time.perf_counter()
            corpus = Corpus.build(srcs, tmp / f"c-{name}", tok, embedder=emb, progress=False)
            build = time.perf_counter() - t0
            unit_grams = [_ngrams(corpus.unit_tokens(u).tolist()) for u in range(len(corpus.units))]
            unit_path = [corpus.store.files[d].rel for d in corpus.units[:, 0]]
            cov, qtimes, rng = [], [], random.Random(0)
            for task in tasks:
                repo_path = f"{task['repo']}/{task['path']}"
                gold = _ngrams(encode(tok, task["gold"]).tolist())
                if not gold:
                    continue
                before = encode(tok, task["prefix"])[-args.query_tokens:].tolist()
                after = encode(tok, task["suffix"])[:args.query_tokens // 6].tolist()
                query = tok.decode(before + after)
                t0 = time.perf_counter()
                if name == "random":
                    units = rng.sample([u for u in range(len(unit_path)) if unit_path[u] != repo_path], args.k)
                else:
                    hits = corpus.search(query, args.k + 40)
                    units = [h.unit for h in hits if h.path != repo_path][:args.k]
                qtimes.append(time.perf_counter() - t0)
                found = set().union(*(unit_grams[u] for u in units)) if units else set()
                cov.append(len(gold & found) / len(gold))
            oracle = []                             # every unit of other files: the ceiling
            by_file: dict[str, set] = {}
            for grams, path in zip(unit_grams, unit_path):
                by_file.setdefault(path, set()).update(grams)
            for task in tasks:
                gold = _ngrams(encode(tok, task["gold"]).tolist())
                if gold:
                    other = set().union(*(g for p, g in by_file.items() if p != f"{task['repo']}/{task['path']}"))
                    oracle.append(len(gold & other) / len(gold))
            out[name] = {"units": len(corpus.units), "build_s": round(build, 1),
                         f"gold_4gram_coverage@{args.k}": round(float(np.mean(cov)), 4),
                         "tasks_with_any_hit": round(float(np.mean([c > 0 for c in cov])), 3),
                         "query_p50_ms": round(pct(qtimes, 50), 2), "query_p95_ms": round(pct(qtimes, 95), 2),
                         "all_other_files_coverage (ceiling)": round(float(np.mean(oracle)), 4)}
            print(name, out[name], flush=True)
    return out


def bench_sources(tok, args) -> dict:
    """Replay of the repo-dev tasks through each source, as a speculative loop would: at each
    step the source drafts from prompt + gold so far; the step advances by the longest draft
    prefix equal to the gold continuation, plus the model's own token. Reports mean tokens
    per step (1.0 = no help), draft hit rate and per-step / per-completion times."""
    from codeswift.pref_cache import PrefCache
    from codeswift.retrieval_sources import CorpusSource, RepoSource
    from codeswift.sources import DraftContext
    tasks = [json.loads(line) for line in (REPO_DEV / "tasks.jsonl").read_text().splitlines()]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for tgz in sorted((REPO_DEV / "repos").glob("*.tar.gz")):
            with tarfile.open(tgz) as tf:
                tf.extractall(tmp / "src", filter="data")
        repos = {p.name: RepoIndex.open_or_build(p, tok, out_dir=tmp / f"idx-{p.name}", progress=False)
                 for p in sorted((tmp / "src").iterdir())}
        corpus = (Corpus.open(args.corpus, tok) if args.corpus else
                  Corpus.build([stdlib_tree(tmp)], tmp / "corpus", tok, progress=False))
        pref = PrefCache(special_ids=tok.all_special_ids)
        from codeswift.sources import ContextSource
        sources = {"context (prompt lookup, baseline)": lambda repo: ContextSource(),
                   "repo": lambda repo: RepoSource(repos[repo]),
                   "repo, min_match=1": lambda repo: RepoSource(repos[repo], min_match=1),
                   "corpus, min_match=1": lambda repo: CorpusSource(corpus, min_match=1), "corpus": lambda repo: CorpusSource(corpus),
                   "pref (after typing a third of the last completion)": lambda repo: pref}
        for name, make in sources.items():
            if args.only and not name.startswith(args.only):
                continue
            per_step, hits, step_t, reset_t = [], [], [], []
            for task in tasks:
                index, rel = repos[task["repo"]], task["path"]
                index.update_file(rel, task["prefix"] + task["suffix"])
                prompt = tok.encode(f"<|fim_prefix|>{task['prefix']}<|fim_suffix|>{task['suffix']}<|fim_middle|>",
                                    add_special_tokens=False)
                gold = encode(tok, task["gold"]).tolist()[:args.steps_tokens]
                source = make(task["repo"])
                for attempt in range(2 if name.startswith("pref") else 1):
                    if attempt == 1:    # the user typed the first third; a new completion starts
                        typed = tok.decode(gold[:len(gold) // 3])
                        prompt = tok.encode(f"<|fim_prefix|>{task['prefix']}{typed}<|fim_suffix|>"
                                            f"{task['suffix']}<|fim_middle|>", add_special_tokens=False)
                        gold = gold[len(gold) // 3:]
                    ctx = DraftContext(prompt, len(prompt), doc_id=rel, path=rel)
                    t0 = time.perf_counter()
                    source.reset(ctx)
                    reset_t.append(time.perf_counter() - t0)
                    i = 0
                    while i < len(gold):
                        ctx = DraftContext(prompt + gold[:i], len(prompt), doc_id=rel, path=rel, step=i)
                        t0 = time.perf_counter()
                        drafts = source.propose(ctx, 16, 4)
                        step_t.append(time.perf_counter() - t0)
                        acc = max((_common(d.tokens, gold[i:]) for d in drafts), default=0)
                        run = gold[i:i + acc + 1]
                        source.observe(ctx, run)
                        if attempt == 1 or not name.startswith("pref"):
                            per_step.append(len(run))
                            hits.append(acc > 0)
                        i += len(run)
                index.update_file(rel, (tmp / "src" / task["repo"] / rel).read_text())
            out[name] = {"tokens_per_step": round(float(np.mean(per_step)), 3),
                         "draft_hit_rate": round(float(np.mean(hits)), 3),
                         "propose_p50_ms": round(pct(step_t, 50), 3), "propose_p95_ms": round(pct(step_t, 95), 3),
                         "reset_p50_ms": round(pct(reset_t, 50), 2), "reset_p95_ms": round(pct(reset_t, 95), 2)}
            print(name, out[name], flush=True)
    return out


def _common(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("index", "update", "lookup", "embedders", "sources", "all"))
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="tokenizer: known name, folder or HF id")
    ap.add_argument("--edits", type=int, default=50, help="update: simulated keystrokes per file")
    ap.add_argument("--k", type=int, default=8, help="embedders: units retrieved per task")
    ap.add_argument("--minilm", action="store_true", help="embedders: include MiniLM (slow to build)")
    ap.add_argument("--dims", default="256,512,1024", help="embedders: hashed dimensions to try")
    ap.add_argument("--query-tokens", type=int, default=384,
                    help="embedders: prefix tokens in the query (suffix: a sixth of that)")
    ap.add_argument("--corpus", help="sources: a built corpus folder (default: build the stdlib subset)")
    ap.add_argument("--steps-tokens", type=int, default=64, help="sources: gold tokens replayed per task")
    ap.add_argument("--only", help="sources: run only the source whose name starts with this")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    from codeswift.models import load_tokenizer
    tok = load_tokenizer(args.model)
    benches = {"index": bench_index, "update": bench_update, "lookup": bench_lookup,
               "embedders": bench_embedders, "sources": bench_sources}
    results = {name: fn(tok, args) for name, fn in benches.items() if args.what in (name, "all")}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
