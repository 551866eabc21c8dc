"""Weight types: llama.cpp's quantizer on a tiny GGUF, and the choice by measured cost curve under
the drafter's acceptance model."""
import json

import pytest

from codeswift import models, quant
from codeswift.quant import COST_KS, acceptance_model, expected_rate


def test_flat_curve_is_worth_drafting_steep_is_not():
    model = (0.7, 0.5, 0.7)
    flat = (30, 31, 31, 32, 33, 34, 37, 40)                    # k = 1,2,3,4,6,8,12,16
    steep = (30, 60, 90, 120, 180, 240, 360, 480)
    tps_flat, k_flat = expected_rate(flat, model)
    tps_steep, k_steep = expected_rate(steep, model)
    assert k_steep == 1 and tps_steep == pytest.approx(1000 / 30)
    assert k_flat > 2 and tps_flat > 1000 / 30
    # a type slower per token can win under speculation when its curve is flat
    assert (expected_rate((34, 35, 35, 36, 38, 40, 50, 60), model)[0]
            > expected_rate((30, 45, 60, 75, 90, 110, 150, 200), model)[0])


def test_expected_rate_counts_accepted_prefix():
    # k=2 on a free second token: 1 + q * p1 tokens per step
    tps, k = expected_rate((10, 10) + (1e9,) * 6, (1.0, 0.5, 0.5))
    assert k == 2 and tps == pytest.approx(1000 * 1.5 / 10)


def test_acceptance_model_from_learned_stats():
    assert acceptance_model(None)[1] == pytest.approx(0.4)            # the drafter's prior
    stats = [{"source": "context", "level": 1, "agreed": False, "bucket": 0, "tested": 10, "accepted": 2},
             {"source": "pref", "level": 2, "agreed": True, "bucket": 0, "tested": 10, "accepted": 8},
             {"source": "pref", "level": 2, "agreed": True, "bucket": 1, "tested": 20, "accepted": 18}]
    q, first, later = acceptance_model(stats)
    assert first == pytest.approx(0.5) and later == pytest.approx(0.9)


@pytest.fixture(scope="module")
def tiny_types(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from codeswift.testing import write_tiny_gguf
    d = tmp_path_factory.mktemp("quant")
    f32 = write_tiny_gguf(d / "tiny-f32.gguf", "llama")
    return {"f32": f32, "q8_0": quant.quantize(f32, d / "tiny-q8_0.gguf", "q8_0"),
            "q4_0": quant.quantize(f32, d / "tiny-q4_0.gguf", "q4_0")}


def test_quantizer_writes_pure_types(tiny_types):
    assert quant.weight_type(tiny_types["f32"]) == "ALL_F32"
    assert quant.weight_type(tiny_types["q8_0"]) == "MOSTLY_Q8_0"
    assert quant.weight_type(tiny_types["q4_0"]) == "MOSTLY_Q4_0"
    assert tiny_types["q4_0"].stat().st_size < tiny_types["q8_0"].stat().st_size < tiny_types["f32"].stat().st_size


def test_quantized_model_decodes_like_its_source_greedy_is_still_lossless(tiny_types):
    from codeswift.backends.llamacpp import LlamaCppBackend
    from codeswift.bench.llamacpp import run_llamacpp_ar
    from codeswift.drafting import DraftConfig, Drafter
    from codeswift.loop import generate
    from codeswift.sources import ContextSource
    be = LlamaCppBackend(tiny_types["q8_0"], n_ctx=1024, n_threads=2)
    prompt = [5, 6, 7, 8, 9] * 4 + [5, 6]
    ar = run_llamacpp_ar(be, prompt, 24, {0})["tokens"]
    spec, _, _ = generate(be, prompt, 24, {0}, drafter=Drafter([ContextSource()], config=DraftConfig(max_nodes=8)))
    assert spec == ar


def test_choose_among_measures_every_type_and_records_why(tiny_types, tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    lines = []
    best, record = quant.choose_among(tiny_types, threads=1, log=lines.append)
    assert best in tiny_types.values()
    assert record["quant"] in tiny_types and len(record["candidates"]) == 3
    by_q = {c["quant"]: c for c in record["candidates"]}
    assert all(len(c["ms"]) == len(COST_KS) and min(c["ms"]) > 0 for c in by_q.values())
    assert by_q[record["quant"]]["expected_tokens_per_s"] == max(c["expected_tokens_per_s"] for c in by_q.values())
    assert any(l.startswith("chose ") for l in lines)
    json.dumps(record)


def test_chosen_quant_is_used_for_a_known_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    name = "qwen2.5-coder-0.5b"
    assert models.chosen_quant(name) is None
    path = models.gguf_path(name, "q4_0")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    models.choice_path(name).write_text(json.dumps({"quant": "q4_0"}))
    assert models.chosen_quant(name) == "q4_0"
    from codeswift.backends.llamacpp import resolve_gguf
    assert resolve_gguf(name) == path
    path.unlink()                                   # the file is gone: no stale choice
    assert models.chosen_quant(name) is None


def test_unknown_type_or_model_is_a_clear_error():
    from codeswift.errors import ModelLoadError
    with pytest.raises(ModelLoadError, match="unknown weight type"):
        quant.make("qwen2.5-coder-0.5b", "q3_k")
    with pytest.raises(ModelLoadError, match="known model name"):
        quant.make("my/model", "q4_0")
