"""The child process of `codeswift.native.probe`: load llama.cpp, decode, print one JSON line.

Run as `python -m codeswift.probe_child [GGUF] [--all-types]`. It may die (SIGILL from a build
this CPU refuses); the parent turns that into a clear error. Nothing imports this module.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def probe_child(gguf: str | None, all_types: bool = False) -> int:
    """Runs in the probe's child process: may die; prints one JSON line when it does not.

    With `all_types`, `gguf` (a small f32 model) is also quantized to Q4_0 and Q8_0 and each is
    decoded: those weight types take the int8 kernels (AMX, VNNI) that an f32 model never runs,
    and an AMX build that the kernel refuses dies there with SIGILL."""
    from .backends.llamacpp import LlamaCppBackend, import_llama_cpp
    lc = import_llama_cpp()
    info = lc.llama_print_system_info().decode(errors="replace").strip()
    if gguf:
        with tempfile.TemporaryDirectory(prefix="codeswift-probe-") as tmp:
            paths = [Path(gguf)]
            if all_types:
                from .quant import quantize
                paths += [quantize(Path(gguf), Path(tmp) / f"probe.{q}.gguf", q) for q in ("q4_0", "q8_0")]
            for path in paths:
                be = LlamaCppBackend(path, n_ctx=256, max_branches=4, n_batch=64)
                be.prefill([1, 2, 3], None)
                be.verify([4, 5], [-1, 0], [0, 1])        # a batched decode: the kernels speculation uses
                be.commit(3)
                del be
    print(json.dumps({"system_info": info, "version": getattr(lc, "__version__", "")}))
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--all-types"]
    sys.exit(probe_child(args[0] if args else None, all_types="--all-types" in sys.argv))
