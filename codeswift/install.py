"""`codeswift setup llamacpp`: build llama.cpp for this CPU, prove it, remember it.

Builds the Python binding (and llama-server from the same vendored sources) with the flags
codeswift/native.py derives from the CPU, proves each build with a decode in a child process,
and marks the build that passed so a second run skips the five-minute rebuild.
"""
from __future__ import annotations

import json
from pathlib import Path

from .native import (LLAMA_CPP_PYTHON, ProbeResult, build_python_binding, cmake_args, cpu_info, library_path,
                     probe, probe_key)


def probe_model() -> Path:
    """A GGUF to prove a build with: a tiny random f32 model written here, which the probe also
    quantizes to Q4_0 and Q8_0 (`all_types`), so every kernel family runs once."""
    from .models import cache_root
    tiny = cache_root() / "probe" / "tiny-f32.gguf"
    if not tiny.is_file():
        from .testing import write_tiny_gguf
        tiny.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_gguf(tiny, "qwen2", hidden=128, heads=4, kv_heads=2)
    return tiny


def _binding_marker() -> Path:
    from .models import cache_root
    return cache_root() / "llama.cpp" / f"binding-{LLAMA_CPP_PYTHON}.json"


def _built_here(args: list[str]) -> bool:
    """The installed binding is the one `setup` built with `args` (same library files)."""
    lib = library_path()
    try:
        d = json.loads(_binding_marker().read_text())
        return lib is not None and d["cmake_args"] == args and d["key"] == probe_key(lib, None, cpu_info())
    except (OSError, ValueError, KeyError):
        return False


def _refused_path() -> Path:
    from .models import cache_root
    return cache_root() / "llama.cpp" / f"refused-{LLAMA_CPP_PYTHON}.json"


def _refused(args: list[str], cpu) -> bool:
    """A build with `args` failed its probe on this CPU before (so `setup` skips it)."""
    try:
        return _refusal_key(args, cpu) in json.loads(_refused_path().read_text())
    except (OSError, ValueError, TypeError):
        return False


def _remember_refused(args: list[str], cpu, why: str) -> None:
    path = _refused_path()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[_refusal_key(args, cpu)] = why
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=1))


def _refusal_key(args: list[str], cpu) -> str:
    return " ".join(args) + " | " + cpu.model + " | " + ",".join(sorted(cpu.flags))


def setup(amx: str = "auto", server: bool = True, force: bool = False, log=print) -> ProbeResult:
    """Build llama.cpp (Python binding, and llama-server from the same sources) for this CPU and
    prove it with a decode in a child process. AMX is tried only where the CPU reports it (or
    `amx="on"`), and kept only if the probe decodes; otherwise the build without AMX is made.
    A build this CPU refused is remembered (per CPU and flags) and not tried again unless
    `force`: the AMX attempt costs five minutes."""
    from .errors import ModelLoadError
    cpu = cpu_info()
    want_amx = amx == "on" or (amx == "auto" and {"amx_tile", "amx_int8"} <= cpu.flags)
    attempts = [True, False] if want_amx else [False]
    res = ProbeResult(False, "not built")
    for use_amx in attempts:
        args = cmake_args(cpu, use_amx)
        if use_amx and not force and _refused(args, cpu):
            log("AMX: this CPU refused the AMX build before (SIGILL in its probe); building without it "
                "(--force tries again)")
            continue
        if not force and _built_here(args):
            log(f"llama-cpp-python {LLAMA_CPP_PYTHON} already built for this CPU ({'AMX on' if use_amx else 'AMX off'}); "
                "--force rebuilds")
        elif build_python_binding(cpu, use_amx, log=log) != 0:
            raise ModelLoadError("pip could not build llama-cpp-python (see the compiler output above)")
        res = probe(probe_model(), use_cache=False, all_types=True)
        log(f"probe ({'AMX on' if use_amx else 'AMX off'}): {'ok' if res.ok else res.detail}")
        if res.ok:
            marker = _binding_marker()
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"cmake_args": args, "key": probe_key(library_path(), None, cpu)}))
            break
        _remember_refused(args, cpu, res.detail)
    if not res.ok:
        raise ModelLoadError(f"llama.cpp does not run on this CPU: {res.detail}")
    if server:
        from .llama_server import build_server
        log(f"llama-server: {build_server(cmake_args(cpu, use_amx), log=log)}")
    return res
