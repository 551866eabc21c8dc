"""`codeswift index` and `codeswift corpus build`: registered into the main CLI.

    codeswift index PATH [--model M] [--out DIR] [--quiet]
    codeswift corpus build SRC... --out DIR [--model M] [--embedder hashed|minilm]
                           [--exclude PATTERN]... [--quiet]

Bad input (missing path, not a folder) prints one line on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def register(subparsers) -> None:
    """Add the `index` and `corpus` subcommands to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "index", help="index a repository (chunks, symbols, token suffix index)",
        description="Walk PATH (honouring .gitignore), parse supported files with tree-sitter and "
                    "store chunks, symbols and a token index under PATH/.codeswift/ (or --out). "
                    "Re-running re-processes changed files only.")
    p.add_argument("path", help="repository folder")
    _common(p)
    p.add_argument("--out", help="index folder (default: PATH/.codeswift)")
    p.set_defaults(func=cmd_index)

    c = subparsers.add_parser("corpus", help="build a general code datastore (suffix index + FAISS)")
    csub = c.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    b = csub.add_parser("build", help="index code folders into a general corpus",
                        description="Index SRC folders (e.g. the Python standard library) into DIR: "
                                    "token suffix index for exact continuations and a FAISS index "
                                    "of chunk embeddings. With --auto: build the automatic corpus that "
                                    "`codeswift lsp` and `serve` otherwise build in the background on "
                                    "first use (this Python's stdlib, then site-packages packages, "
                                    "smallest first, up to --max-mb).")
    b.add_argument("sources", nargs="*", metavar="SRC", help="code folders (not with --auto)")
    b.add_argument("--out", help="corpus folder (required without --auto)")
    b.add_argument("--auto", action="store_true",
                   help="build the automatic stdlib + site-packages corpus into codeswift's cache")
    b.add_argument("--workspace", help="with --auto: prefer this project's .venv/venv site-packages")
    b.add_argument("--max-mb", type=float, default=24,
                   help="with --auto: size cap in MiB of source (default: %(default)s)")
    b.add_argument("--embedder", choices=("hashed", "minilm"), default="hashed",
                   help="chunk embedder (default: %(default)s; measured better and ~100x faster than minilm)")
    b.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="gitignore-style pattern to skip, repeatable (e.g. site-packages/ or test/)")
    _common(b)
    b.set_defaults(func=cmd_corpus_build)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="model whose tokenizer the index uses (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _error(msg: str) -> int:
    print(f"codeswift: error: {msg}", file=sys.stderr)
    return 2


def _check_folder(path: str) -> str | None:
    p = Path(path)
    if not p.exists():
        return f"no such folder: {path}"
    if not p.is_dir():
        return f"not a folder: {path}"
    return None


def _tokenizer(spec: str):
    from codeswift.models import load_tokenizer
    return load_tokenizer(spec)


def cmd_index(args: argparse.Namespace) -> int:
    """Build or refresh a repository index and print a summary."""
    problem = _check_folder(args.path)
    if problem:
        return _error(problem)
    from datastore.repo_index import RepoIndex
    tokenizer = _tokenizer(args.model)
    quiet = logging.getLogger("datastore")                    # the summary or error line says it all
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        index = RepoIndex.open_or_build(args.path, tokenizer, args.out, progress=not args.quiet)
    finally:
        quiet.setLevel(level)
    if index.save_error:                          # a full disk or read-only folder: nothing saved
        return _error(index.save_error)
    r = index.report
    _summary(f"codeswift index: {r.files:,} files ({r.processed:,} processed, {r.reused:,} reused, "
             f"{r.skipped:,} skipped, {r.removed:,} removed), {r.chunks:,} chunks, {r.symbols:,} symbols, "
             f"{r.tokens:,} tokens in {r.seconds:.2f} s [{r.reason}]", index.index_path)
    return 0


def cmd_corpus_build(args: argparse.Namespace) -> int:
    """Build a general corpus from code folders and print a summary."""
    if args.auto:
        return _corpus_auto(args)
    if not args.sources or not args.out:
        return _error("corpus build needs SRC folders and --out DIR (or --auto)")
    for src in args.sources:
        problem = _check_folder(src)
        if problem:
            return _error(problem)
    from datastore.corpus import Corpus
    tokenizer = _tokenizer(args.model)
    t0 = time.perf_counter()
    corpus = Corpus.build(args.sources, args.out, tokenizer, args.embedder, progress=not args.quiet,
                          exclude=args.exclude)
    r, s = corpus.report, corpus.stats()
    _summary(f"codeswift corpus: {r.files:,} files ({r.processed:,} processed, {r.reused:,} reused, "
             f"{r.skipped:,} skipped), {r.chunks:,} chunks, {s['units']:,} units ({s['embedder']}), "
             f"{r.tokens:,} tokens in {time.perf_counter() - t0:.2f} s [{r.reason}]", s["path"])
    return 0


def _corpus_auto(args: argparse.Namespace) -> int:
    from codeswift.std_corpus import build_auto, corpus_plan
    if args.sources or args.out:
        return _error("--auto takes no SRC folders and no --out (it uses codeswift's cache)")
    try:
        plan = corpus_plan(args.workspace, args.max_mb)
    except ValueError as e:
        return _error(str(e))
    tokenizer = _tokenizer(args.model)
    if not args.quiet:
        print(f"codeswift corpus: {plan.describe()}", file=sys.stderr)
    t0 = time.perf_counter()
    corpus = build_auto(tokenizer, plan, progress=not args.quiet)
    r, s = corpus.report, corpus.stats()
    _summary(f"codeswift corpus: {s['files']:,} files ({r.processed:,} processed, {r.skipped:,} skipped), "
             f"{s['units']:,} units, {s['tokens']:,} tokens in {time.perf_counter() - t0:.2f} s [{r.reason}]",
             s["path"])
    return 0


def _summary(line: str, path) -> None:
    from rich.console import Console
    console = Console(soft_wrap=True, highlight=False)
    console.print(line, markup=False)
    console.print(f"saved to {path}", markup=False)
