"""Reliability soak: the tests in tests/reliability/ with large counts, and their figures.

    python scripts/fuzz_soak.py                      # HTTP 2,000 bodies per case, 100 LSP sessions,
                                                     # 100 kill -9 runs, 1,000 cancel cycles (~30-60 min on 2 cores)
    python scripts/fuzz_soak.py --http 200 --lsp 20 --kills 20 --cancels 200 --mirror 2000 --paths 300
    python scripts/fuzz_soak.py -- -k cancel_storm   # extra pytest arguments after --

The tests read their sizes from CODESWIFT_SOAK_* variables (the defaults in CI are small) and
append what they measured to $CODESWIFT_SOAK_REPORT; this script sets both, runs pytest once
and prints the figures: fuzzed requests and messages by outcome, kill -9 runs by where they
landed, RSS during the cancel storm. Figures go in reports, never into tests.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"http": ("HTTP_EXAMPLES", 2000), "lsp": ("LSP_SESSIONS", 100), "kills": ("KILL_RUNS", 100),
         "cancels": ("CANCEL_CYCLES", 1000), "mirror": ("MIRROR_EXAMPLES", 5000), "paths": ("PATH_EXAMPLES", 500)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, (_, default) in SIZES.items():
        p.add_argument(f"--{flag}", type=int, default=default, help=f"default: {default}")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "CODESWIFT_SOAK_REPORT": str(report), "OMP_NUM_THREADS": "1",
               **{f"CODESWIFT_SOAK_{name}": str(getattr(args, flag)) for flag, (name, _) in SIZES.items()}}
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", "-p", "no:cacheprovider",
                                "tests/reliability", *args.pytest_args], cwd=ROOT, env=env)
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print_figures(rows)
    return code


def print_figures(rows: list[dict]) -> None:
    """The last figures each test recorded (the HTTP fuzz records a running total)."""
    last: dict[str, dict] = {}
    for row in rows:
        last[row.pop("test")] = row
    print("\nreliability figures")
    for name, figures in last.items():
        shown = {k: v for k, v in figures.items() if k != "rss_mb"}
        print(f"  {name:16} " + ", ".join(f"{k} {v}" for k, v in shown.items()))
        if "rss_mb" in figures:
            rss = figures["rss_mb"]
            print(f"  {'':16} RSS MiB first {rss[0]}, max {max(rss)}, last {rss[-1]} ({len(rss)} samples)")


if __name__ == "__main__":
    sys.exit(main())
