"""The native llama.cpp runtime: which CPU this is, how to build llama.cpp for it, and whether the
installed build is safe to load.

Machines differ (AVX2-only, AVX512, AVX512-BF16, AMX) and a llama.cpp build can kill the process
that loads it: the default native build of llama-cpp-python 0.3.36 dies with SIGILL at the first
decode on AMX Xeons (`tileloadd`). So:

- `cmake_args(features)` builds for the features this CPU reports, with `GGML_NATIVE=OFF` and AMX
  off unless asked for (and then only kept where a decode in a child process works);
- `probe()` loads the build in a *child process* and decodes one token; the result is cached per
  (build file, CPU) so a server pays for it once; a crash is a clear error, never a dead server.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"              # the version the llamacpp extra pins

# (cpuinfo flag, ggml cmake option), in the order ggml's CMake knows them.
ISA_FLAGS = (
    ("avx", "GGML_AVX"), ("avx2", "GGML_AVX2"), ("fma", "GGML_FMA"), ("f16c", "GGML_F16C"),
    ("avx_vnni", "GGML_AVX_VNNI"), ("avx512f", "GGML_AVX512"), ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"), ("avx512_bf16", "GGML_AVX512_BF16"),
)
AMX_FLAGS = (("amx_tile", "GGML_AMX_TILE"), ("amx_int8", "GGML_AMX_INT8"), ("amx_bf16", "GGML_AMX_BF16"))


@dataclass(frozen=True)
class CpuInfo:
    model: str
    arch: str
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def cpu_class(self) -> str:
        """The class that decides verification cost (see README): amx > avx512-bf16 > avx512 > avx2."""
        f = self.flags
        if {"amx_tile", "amx_int8"} <= f:
            return "amx"
        if "avx512_bf16" in f:
            return "avx512-bf16"
        if "avx512f" in f:
            return "avx512"
        if "avx2" in f:
            return "avx2"
        return self.arch or "unknown"

    def describe(self) -> str:
        return f"{self.model} ({self.cpu_class}, {os.cpu_count()} threads)"


def cpu_info(cpuinfo: str | None = None) -> CpuInfo:
    """Features of this CPU, from /proc/cpuinfo on Linux (elsewhere: arch only, no x86 flags)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    names, flags = [], frozenset()
    for line in cpuinfo.splitlines():
        key, _, val = line.partition(":")
        if key.strip() == "model name":
            names.append(val.strip())
        elif key.strip() in ("flags", "Features") and not flags:
            flags = frozenset(val.split())
    return CpuInfo(names[0] if names else (platform.processor() or "unknown"), platform.machine(), flags)


def cmake_args(cpu: CpuInfo, amx: bool = False) -> list[str]:
    """CMake options for a llama.cpp build that uses exactly the ISA this CPU reports.

    GGML_NATIVE=OFF: -march=native switches on AMX kernels wherever the compiler sees the flags,
    and that build crashed on AMX Xeons; every extension is named here instead. Not x86: native.
    """
    if cpu.arch not in ("x86_64", "AMD64", "i686") or not cpu.flags:
        return ["-DGGML_NATIVE=ON"]
    args = ["-DGGML_NATIVE=OFF"]
    for flag, opt in ISA_FLAGS:
        args.append(f"-D{opt}={'ON' if flag in cpu.flags else 'OFF'}")
    for flag, opt in AMX_FLAGS:
        args.append(f"-D{opt}={'ON' if amx and flag in cpu.flags else 'OFF'}")
    return args


# -- probe ------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    ok: bool
    detail: str                            # system info on success, the failure otherwise
    library: str = ""                      # the libllama the probe loaded
    version: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def library_path() -> Path | None:
    import importlib.util
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    for name in ("lib/libllama.so", "lib/libllama.dylib", "lib/llama.dll", "libllama.so"):
        if (root / name).exists():
            return root / name
    return root


def probe_key(lib: Path, gguf: str | None, cpu: CpuInfo) -> str:
    parts = [str(lib)]
    for p in sorted(lib.parent.glob("*ggml*")) + [lib]:
        try:
            st = p.stat()
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            pass
    parts += [str(gguf), cpu.model, ",".join(sorted(cpu.flags))]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def probe(gguf: str | Path | None = None, timeout: float = 120.0, use_cache: bool = True,
          child: list[str] | None = None, all_types: bool = False) -> ProbeResult:
    """Load llama.cpp in a child process, print its system info and (given a GGUF) decode one
    token. A build that dies (SIGILL on an unsupported instruction) fails here, not in the server.
    Results are cached per (library files, GGUF, CPU). `child` replaces the probe command (tests:
    a child that really crashes)."""
    lib = library_path()
    if lib is None:
        return ProbeResult(False, "llama-cpp-python is not installed (pip install 'codeswift[llamacpp]' "
                                  "or `codeswift setup llamacpp`)")
    from .models import cache_root
    what = (str(gguf) + (" all types" if all_types else "")) if gguf else None
    cache = cache_root() / "probe" / f"{probe_key(lib, what, cpu_info())}.json"
    if use_cache and child is None:
        try:
            return ProbeResult(**json.loads(cache.read_text()))
        except (OSError, ValueError, TypeError):
            pass
    cmd = child or ([sys.executable, "-m", "codeswift.probe_child"]
                    + ([str(gguf)] if gguf else []) + (["--all-types"] if all_types else []))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"the llama.cpp probe did not finish in {timeout:.0f} s", str(lib))
    if r.returncode == 0 and r.stdout.strip():
        d = json.loads(r.stdout.strip().splitlines()[-1])
        res = ProbeResult(True, d["system_info"], str(lib), d["version"])
    else:
        res = ProbeResult(False, _failure(r.returncode, r.stderr), str(lib))
    if child is None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(res.to_json()))
        except OSError:
            pass
    return res


def _failure(rc: int, stderr: str) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        why = {"SIGILL": "the build uses an instruction this CPU lacks (AMX/AVX512?)"}.get(name, "it crashed")
        return (f"llama.cpp killed its process with {name} at the first decode: {why}. Rebuild it for "
                f"this CPU with `codeswift setup llamacpp`")
    tail = [l for l in stderr.strip().splitlines() if l.strip()][-1:] or ["no output"]
    return f"the llama.cpp probe failed (exit {rc}): {tail[0]}"


# -- build ------------------------------------------------------------------------------------
def vendored_sources(version: str = LLAMA_CPP_PYTHON) -> Path:
    """llama.cpp's sources as vendored in the llama-cpp-python sdist of `version` (so the Python
    binding, llama-server and the quantizer/converter are the same llama.cpp), fetched once."""
    import tarfile
    import tempfile
    from .errors import ModelLoadError
    from .models import cache_root
    root = cache_root() / "llama.cpp" / f"src-{version}"
    src = root / "vendor" / "llama.cpp"
    if (src / "CMakeLists.txt").is_file():
        return src
    with tempfile.TemporaryDirectory(prefix="codeswift-sdist-") as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            f"llama-cpp-python=={version}", "-d", tmp], capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if r.returncode != 0 or not sdists:
            raise ModelLoadError(f"cannot download the llama-cpp-python=={version} sdist: "
                                 f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
        part = root.with_name(root.name + ".partial")
        if part.exists():
            import shutil
            shutil.rmtree(part)
        with tarfile.open(sdists[0]) as tf:
            tf.extractall(part, filter="data")
        top = next(part.iterdir())
        root.parent.mkdir(parents=True, exist_ok=True)
        top.replace(root)
    return src


def build_python_binding(cpu: CpuInfo, amx: bool = False, version: str = LLAMA_CPP_PYTHON,
                         log=print) -> int:
    """pip-build llama-cpp-python from source with flags for this CPU (--no-cache-dir: pip would
    otherwise reuse a wheel built with other flags)."""
    env = {**os.environ, "CMAKE_ARGS": " ".join(cmake_args(cpu, amx)), "FORCE_CMAKE": "1"}
    log(f"building llama-cpp-python=={version} for {cpu.describe()} (about 5 minutes on 2 cores): "
        f"CMAKE_ARGS={env['CMAKE_ARGS']}")
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    rc = subprocess.call(pip + ["--no-cache-dir", "--force-reinstall", "--no-deps", f"llama-cpp-python=={version}"],
                         env=env)
    # its own dependencies (numpy, diskcache, jinja2, ...) without rebuilding it, and sentencepiece for
    # the converter behind `models pull --quant` (the llamacpp extra names the same)
    return rc or subprocess.call(pip + [f"llama-cpp-python=={version}", "sentencepiece"], env=env)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--cmake-args"]:
        print(" ".join(cmake_args(cpu_info(), amx="--amx" in argv)))
        return 0
    print(json.dumps(probe(argv[0] if argv else None, use_cache=False).to_json(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
