"""`codeswift info`: what this machine is and what codeswift chose on it, and why.

CPU features, the torch and llama.cpp builds, the backend/dtype/weight type `--backend auto`
picks for a model, and the cost curves measured so far. Everything is read or measured, nothing
is assumed; llama.cpp is looked at through the child-process probe only.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def gather(model: str = "qwen2.5-coder-0.5b", device: str = "auto") -> dict:
    from . import native
    cpu = native.cpu_info()
    out: dict = {"cpu": {"model": cpu.model, "class": cpu.cpu_class, "arch": cpu.arch,
                         "threads": os.cpu_count(),
                         "features": sorted(f for f in cpu.flags if f in _INTERESTING)}}
    out["torch"] = _torch(device)
    pr = native.probe(None)
    out["llamacpp"] = {"installed": bool(pr.library), "ok": pr.ok, "version": pr.version,
                       "system_info" if pr.ok else "error": pr.detail,
                       "build_flags_for_this_cpu": " ".join(native.cmake_args(cpu))}
    try:
        from .llama_server import find_server
        srv = find_server()
        out["llama_server"] = str(srv) if srv else "not built (codeswift setup llamacpp)"
    except ImportError:
        out["llama_server"] = "unavailable"
    out["choice"] = choice(model, device, out)
    out["cost_curves"] = cost_curves()
    out["self_draft"] = self_draft_facts()
    return out


_INTERESTING = {"avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512vbmi",
                "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "neon",
                "asimd", "sve"}


def _torch(device: str) -> dict:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    from .models import cpu_bf16_is_fast, pick_device
    dev = pick_device(device)
    d = {"version": torch.__version__, "device": dev, "cuda": torch.cuda.is_available(),
         "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
         "mkldnn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())}
    if dev == "cpu":
        d["bf16_faster_than_fp32"] = cpu_bf16_is_fast()
    return d


def choice(model: str, device: str, facts: dict) -> dict:
    """What `--backend auto` loads for `model`, and why (the same rule Engine.load applies)."""
    from . import models, quant
    dev = facts["torch"].get("device", "cpu")
    gguf_like = models.is_gguf_spec(model)
    c: dict = {"model": model}
    if gguf_like and dev == "cpu" and facts["llamacpp"]["ok"]:
        c["backend"] = "llamacpp"
        c["why"] = "GGUF/known model on CPU and the llama.cpp build passed its child-process probe"
        if model in models.KNOWN:
            q = models.chosen_quant(model)
            path = models.gguf_path(model, q or "q4_k_m")
            c["weight_type"] = q or "q4_k_m"
            c["why_weight_type"] = (f"measured by `models pull --quant auto` ({models.choice_path(model)})" if q
                                    else "the published Q4_K_M (run `codeswift models pull NAME --quant auto` "
                                         "to choose by measurement)")
            if path.is_file():
                c["gguf"], c["gguf_file_type"] = str(path), quant.weight_type(path)
        else:
            c["gguf_file_type"] = quant.weight_type(Path(model)) if Path(model).is_file() else "missing"
    else:
        c["backend"] = "transformers"
        reasons = []
        if not gguf_like:
            reasons.append("not a GGUF or known model")
        if dev != "cpu":
            reasons.append(f"device {dev}")
        if not facts["llamacpp"]["ok"]:
            reasons.append("llama.cpp " + ("not installed" if not facts["llamacpp"]["installed"]
                                           else "failed its probe"))
        c["why"] = ", ".join(reasons)
        tf = facts["torch"]                      # pick_dtype's rule, on the facts gathered above
        c["dtype"] = ("bfloat16" if dev.startswith("cuda") else "float16" if dev == "mps"
                      else "bfloat16" if tf.get("bf16_faster_than_fp32") else "float32")
        c["why_dtype"] = "measured: bf16 vs fp32 matmul on this device" if dev == "cpu" else f"default on {dev}"
    c["self_draft"] = SELF_DRAFT[c["backend"]]
    return c


# Which backend can draft with the model itself (the `self` source, SWIFT layer skipping).
SELF_DRAFT = {
    "transformers": "available (layers skipped in llama, qwen2, mistral and gpt2 layouts; "
                    "the budget drafts only where it pays on this device's cost curve)",
    "llamacpp": "unavailable: llama.cpp has no layer-skip API (self-drafts need --backend transformers)",
}


def self_draft_facts() -> list[dict]:
    """Per model and device: the skip set the layer search found and the measured draft cost."""
    from .models import cache_root
    rows: dict[str, dict] = {}
    for kind in ("skip", "selfcost"):
        for p in sorted((cache_root() / kind).glob("*.json")):
            try:
                d = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            rows.setdefault(p.stem, {"for": d.get("for", "?")})[kind] = {
                k: v for k, v in d.items() if k != "for"}
    return list(rows.values())


def cost_curves() -> list[dict]:
    from .models import cache_root
    rows = []
    for p in sorted((cache_root() / "cost").glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        rows.append({"file": p.name, "for": d.get("for", "?"),
                     "ms": dict(zip(map(str, d.get("ks", [])), d.get("ms", [])))})
    return rows


def render(info: dict) -> str:
    c, t, l = info["cpu"], info["torch"], info["llamacpp"]
    lines = [f"CPU        {c['model']} — class {c['class']}, {c['threads']} threads",
             f"           features: {' '.join(c['features']) or '(none reported)'}",
             f"torch      {t.get('version', 'not installed')} on {t.get('device', '-')}, capability "
             f"{t.get('cpu_capability', '-')}, {t.get('threads', '-')} threads"
             + (f", bf16 faster than fp32: {t['bf16_faster_than_fp32']}" if "bf16_faster_than_fp32" in t else ""),
             f"llama.cpp  {'ok ' + l['version'] if l['ok'] else 'unusable: ' + l.get('error', '')}",
             ]
    if l["ok"]:
        lines.append(f"           {l['system_info']}")
    lines += [f"           flags for this CPU: {l['build_flags_for_this_cpu']}",
              f"llama-server {info['llama_server']}"]
    ch = info["choice"]
    lines.append(f"choice     {ch['model']}: backend {ch['backend']} ({ch['why']})")
    for k in ("weight_type", "why_weight_type", "gguf", "gguf_file_type", "dtype", "why_dtype", "self_draft"):
        if k in ch:
            lines.append(f"           {k}: {ch[k]}")
    lines.append(f"cost curves ({len(info['cost_curves'])} cached, ms per verify of k tokens):")
    for r in info["cost_curves"]:
        lines.append(f"           {r['for']}: " + " ".join(f"k{k}={v:.0f}" for k, v in r["ms"].items()))
    lines.append(f"self-drafts ({len(info.get('self_draft', []))} models searched; skipped layers, agreement "
                 "with the full model, draft cost as a fraction of a full pass):")
    for r in info.get("self_draft", []):
        skip, cost = r.get("skip", {}), r.get("selfcost", {})
        match = skip.get("match")
        lines.append(f"           {r['for']}: skip {skip.get('skip', '-')} of {skip.get('n_layers', '?')}"
                     + (f", agreement {match:.2f}" if isinstance(match, (int, float)) else "")
                     + (f", cost {cost['fixed']:.2f} + {cost['per_layer']:.3f}/layer" if cost else ""))
    return "\n".join(lines)
