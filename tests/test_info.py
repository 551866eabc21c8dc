"""`codeswift info`: the facts it reports and the backend choice it explains."""
import json
import subprocess
import sys

from codeswift import info


def facts(llamacpp_ok: bool, bf16_fast: bool = True, device: str = "cpu") -> dict:
    return {"torch": {"device": device, "bf16_faster_than_fp32": bf16_fast},
            "llamacpp": {"ok": llamacpp_ok, "installed": True}}


def test_choice_prefers_a_probed_llamacpp_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    c = info.choice("qwen2.5-coder-0.5b", "auto", facts(True))
    assert c["backend"] == "llamacpp" and c["weight_type"] == "q4_k_m" and "probe" in c["why"]


def test_choice_falls_back_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    c = info.choice("qwen2.5-coder-0.5b", "auto", facts(False, bf16_fast=False))
    assert c["backend"] == "transformers" and "failed its probe" in c["why"] and c["dtype"] == "float32"
    c = info.choice("Qwen/Qwen2.5-Coder-0.5B", "auto", facts(True))
    assert c["backend"] == "transformers" and "not a GGUF" in c["why"] and c["dtype"] == "bfloat16"
    c = info.choice("qwen2.5-coder-0.5b", "auto", facts(True, device="cuda"))
    assert c["backend"] == "transformers" and "device cuda" in c["why"] and c["dtype"] == "bfloat16"


def test_info_command_prints_json_with_cpu_class(tmp_path):
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "info", "--json"], capture_output=True, text=True,
                       env={**__import__("os").environ, "CODESWIFT_CACHE": str(tmp_path)}, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["cpu"]["class"] in ("amx", "avx512-bf16", "avx512", "avx2") or d["cpu"]["arch"] != "x86_64"
    assert d["choice"]["backend"] in ("llamacpp", "transformers")
    assert "GGML_NATIVE" in d["llamacpp"]["build_flags_for_this_cpu"]
