"""GGUF weight types for the llama.cpp backend, made with llama.cpp's own tools and chosen by
measurement.

The weight type decides whether verifying several draft tokens is nearly free: tinyBLAS reuses
unpacked weights across tokens for Q4_0/Q8_0/IQ4_NL/BF16, the 8x8 repack of Q4_0/Q4_K/IQ4_NL works
in groups of 4 tokens, and Q4_K_M files also hold Q6_K tensors that fall back to one-token kernels
on non-AMX x86 below 8 tokens. So `auto` measures the cost curve of each type on this machine and
picks the one with the most expected tokens per second *under speculation* (the drafter's own
acceptance model), not the fastest single token.

Files: `<cache>/gguf/<name>.gguf` (the published Q4_K_M), `<cache>/gguf/<name>.<type>.gguf`
(made here), `<cache>/gguf/<name>.choice.json` (what `auto` picked, with its figures).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .models import WEIGHT_TYPES, choice_path, gguf_path, note

# name -> llama.cpp ftype constant (llama_cpp.LLAMA_FTYPE_*), None: not made by the quantizer.
QUANTS = {"q4_k_m": None, "bf16": None, "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
          "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "iq4_nl": "LLAMA_FTYPE_MOSTLY_IQ4_NL"}
AUTO_CANDIDATES = ("q4_k_m", "q4_0", "q8_0", "iq4_nl")
COST_KS = (1, 2, 3, 4, 6, 8, 12, 16)
assert set(QUANTS) == set(WEIGHT_TYPES)


def weight_type(gguf: Path) -> str:
    """The file type a GGUF declares (e.g. 'MOSTLY_Q4_K_M'), read with the gguf package."""
    import gguf as G
    r = G.GGUFReader(str(gguf))
    f = r.fields.get("general.file_type")
    if f is None:
        return "unknown"
    v = int(f.parts[f.data[0]][0])
    try:
        return G.LlamaFileType(v).name
    except ValueError:
        return f"file_type {v}"


# -- making the files ---------------------------------------------------------------------
def make(name: str, quant: str) -> Path:
    """The GGUF of known model `name` in weight type `quant`, made once and cached."""
    from .models import KNOWN, pull_gguf_from_pypi
    if name not in KNOWN:
        raise ModelLoadError(f"--quant needs a known model name ({', '.join(KNOWN)}), got {name!r}")
    if quant not in QUANTS:
        raise ModelLoadError(f"unknown weight type {quant!r} (use auto, {', '.join(QUANTS)})")
    out = gguf_path(name, quant)
    if out.is_file():
        return out
    if quant == "q4_k_m":
        return pull_gguf_from_pypi(KNOWN[name])
    src = make_bf16(name)
    if quant == "bf16":
        return src
    return quantize(src, out, quant)


def make_bf16(name: str) -> Path:
    """bf16 GGUF from the model's Hugging Face folder with llama.cpp's convert_hf_to_gguf.py
    (vendored in the llama-cpp-python sdist). Where the hub is unreachable the folder holds the
    weights dequantised from the published Q4_K_M: every type made from it inherits that
    rounding, which the bench's edit similarity per type makes visible."""
    from .models import pull
    from .native import vendored_sources
    out = gguf_path(name, "bf16")
    if out.is_file():
        return out
    folder = pull(name)
    src = vendored_sources()
    tmp = out.with_suffix(".partial")
    note(f"converting {folder} to a bf16 GGUF with llama.cpp's convert_hf_to_gguf.py ...")
    r = subprocess.run([sys.executable, str(src / "convert_hf_to_gguf.py"), str(folder), "--outtype", "bf16",
                        "--outfile", str(tmp)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(src / "gguf-py")})
    if r.returncode != 0 or not tmp.is_file():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise ModelLoadError(f"convert_hf_to_gguf.py failed for {name}: {' | '.join(tail)}")
    tmp.replace(out)
    return out


def quantize(src: Path, out: Path, quant: str, threads: int | None = None) -> Path:
    """llama.cpp's own quantizer (llama_model_quantize), `pure`: every tensor in `quant` (a mixed
    file would bring back the one-token kernels this is meant to avoid)."""
    from .backends.llamacpp import import_llama_cpp
    lc = import_llama_cpp()
    from llama_cpp._logger import set_verbose
    set_verbose(False)                                   # llama.cpp logs every tensor otherwise
    params = lc.llama_model_quantize_default_params()
    params.ftype = getattr(lc, QUANTS[quant])
    params.allow_requantize = True
    params.pure = True
    if threads:
        params.nthread = threads
    tmp = out.with_suffix(".partial")
    note(f"quantizing {src.name} to {quant} with llama.cpp's quantizer ...")
    rc = lc.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        raise ModelLoadError(f"llama.cpp could not quantize {src.name} to {quant} (code {rc})")
    tmp.replace(out)
    return out


# -- choosing by measurement --------------------------------------------------------------
@dataclass
class Candidate:
    quant: str
    path: Path
    ms: tuple[float, ...]           # cost at COST_KS
    tokens_per_s: float = 0.0       # expected under speculation
    best_k: int = 1

    def to_json(self) -> dict:
        return {"quant": self.quant, "path": str(self.path), "ks": list(COST_KS), "ms": list(self.ms),
                "expected_tokens_per_s": round(self.tokens_per_s, 2), "best_k": self.best_k}


def acceptance_model(stats: list[dict] | None = None) -> tuple[float, float, float]:
    """(share of steps with a draft, first-token rate, later-token rate) from learned drafter
    statistics (`Drafter.export_stats`), else the drafter's prior."""
    from .drafting import SourceStats
    prior = SourceStats().rate
    first = [d for d in stats or () if not d.get("bucket")]
    later = [d for d in stats or () if d.get("bucket")]

    def pooled(xs):
        t = sum(float(x["tested"]) for x in xs)
        return sum(float(x["accepted"]) for x in xs) / t if t > 0 else prior
    return 0.7, pooled(first), max(pooled(later), pooled(first))


def expected_rate(ms: tuple[float, ...], model: tuple[float, float, float]) -> tuple[float, int]:
    """Expected tokens/s and the chain length k that gives it: a step verifies k-1 draft tokens
    (when a draft exists) and emits 1 + the accepted prefix."""
    from .budget import CostCurve
    curve = CostCurve(COST_KS, ms)
    q, p1, p2 = model
    best = (1000.0 / curve(1), 1)
    for k in range(2, COST_KS[-1] + 1):
        # P(the first j+1 draft tokens are all accepted): p1, then p2 for each later token
        tokens = 1 + q * float((p1 * p2 ** np.arange(k - 1)).sum())
        ms_step = (1 - q) * curve(1) + q * curve(k)
        best = max(best, (1000.0 * tokens / ms_step, k))
    return best


def measure_curve(path: Path, threads: int | None = None, past: int = 256, reps: int = 3) -> tuple[float, ...]:
    """Cost of verify() over k = COST_KS chain tokens after `past` tokens, through the backend
    the loop uses (min over reps)."""
    from .backends.llamacpp import LlamaCppBackend
    from .budget import measure
    be = LlamaCppBackend(path, n_ctx=1024, n_threads=threads, n_batch=64, max_branches=4)
    curve = measure(be, be.n_vocab, past_len=past, reps=reps, ks=COST_KS)
    return tuple(round(m, 2) for m in curve.ms)


def choose(name: str, candidates=AUTO_CANDIDATES, threads: int | None = None, stats: list | None = None) -> Path:
    """Make each candidate type of known model `name`, measure, pick and remember (see choose_among)."""
    paths = {q: make(name, q) for q in candidates}
    best, record = choose_among(paths, threads, stats)
    choice_path(name).write_text(json.dumps(record, indent=1))
    return best


def choose_among(paths: dict[str, Path], threads: int | None = None, stats: list | None = None,
                 log=note) -> tuple[Path, dict]:
    """Measure each GGUF's cost curve (after a child-process probe), pick the highest expected
    tokens/s under speculation, and return it with a record of every figure and the reason."""
    from .native import cpu_info, probe
    model = acceptance_model(stats)
    results = []
    for q, path in paths.items():
        pr = probe(path)
        if not pr.ok:
            log(f"  {q}: skipped, {pr.detail}")
            continue
        t0 = time.perf_counter()
        ms = measure_curve(path, threads)
        c = Candidate(q, path, ms)
        c.tokens_per_s, c.best_k = expected_rate(ms, model)
        results.append(c)
        log(f"  {q:7} verify ms k={'/'.join(map(str, COST_KS))}: {'/'.join(f'{m:.0f}' for m in ms)}  "
            f"-> {c.tokens_per_s:.1f} tok/s expected (k={c.best_k}; measured in {time.perf_counter() - t0:.0f} s)")
    if not results:
        raise ModelLoadError("no weight type could be measured: llama.cpp is unusable here (see `codeswift info`)")
    best = max(results, key=lambda c: c.tokens_per_s)
    record = {"quant": best.quant, "cpu": cpu_info().describe(), "threads": threads,
              "acceptance_model": {"draft_share": model[0], "first": round(model[1], 3), "later": round(model[2], 3)},
              "candidates": [c.to_json() for c in results], "time": time.strftime("%Y-%m-%d %H:%M")}
    log(f"chose {best.quant}: {best.tokens_per_s:.1f} expected tokens/s under speculation on {record['cpu']} "
        f"(acceptance first {model[1]:.2f}, later {model[2]:.2f}); quality differs by type: compare edit "
        f"similarity with `codeswift bench --gguf FILE`")
    return best.path, record
