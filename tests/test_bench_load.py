"""`codeswift bench --mode load`: simulated editors against a real `codeswift serve` process,
and the statistics behind its report."""
import asyncio
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from codeswift.bench.load import editor_plan, parse_editors, parse_engines, plan_session, sse_events
from codeswift.bench.load_report import aggregate, mark_identical, percentile, summary_line
from codeswift.bench.tasks import load_tasks
from codeswift.errors import BadInputError
from codeswift.testing import SAMPLE_CODE

LAST = re.compile(r"^throughput_vs_serve=(\S+) p95_vs_serve=(\S+) proposer_vs_ngram=(\S+) identical=(\d+)/(\d+)$")


@pytest.fixture
def tasks_dir(tmp_path):
    """A repo-dev style folder: one repository, a line task and a function task."""
    src = tmp_path / "src" / "proj"
    src.mkdir(parents=True)
    (src / "m.py").write_text(SAMPLE_CODE)
    (tmp_path / "dev" / "repos").mkdir(parents=True)
    with tarfile.open(tmp_path / "dev" / "repos" / "proj.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="proj")
    o = SAMPLE_CODE
    line, body, end = o.index("a + b"), o.index("    if n < 2"), o.index("class Stack")
    tasks = [{"task_id": "proj/line/0", "repo": "proj", "language": "py", "path": "m.py", "kind": "line",
              "prefix": o[:line], "suffix": o[line + 5:], "gold": "a + b"},
             {"task_id": "proj/function/1", "repo": "proj", "language": "py", "path": "m.py", "kind": "function",
              "prefix": o[:body], "suffix": o[end:], "gold": o[body:end]}]
    (tmp_path / "dev" / "tasks.jsonl").write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    return tmp_path / "dev"


def _bench(tiny, tasks, out, *extra):
    cmd = [sys.executable, "-m", "codeswift.cli", "bench", "--mode", "load", "--model", str(tiny), "--dtype",
           "float32", "--tasks", str(tasks), "--max-tokens", "12", "--session-requests", "2", "--out", str(out),
           "--stagger-ms", "20", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_load_mode_end_to_end_with_serve(tiny_qwen, tasks_dir, tmp_path):
    out = tmp_path / "out"
    r = _bench(tiny_qwen, tasks_dir, out, "--engines", "serve", "--editors", "2,1")
    assert r.returncode == 0, r.stderr[-3000:]
    plan = plan_session(load_tasks(tasks_dir), 2, 12, None)
    per_editor = len(plan)
    assert per_editor >= 3
    # 1 editor + 2 editors, every one the whole session; serve's first answers are the reference
    m = LAST.match(r.stdout.strip().splitlines()[-1])
    assert m, r.stdout
    assert m.groups()[:3] == ("-", "-", "-")                   # no vllm engines ran
    assert int(m.group(4)) == int(m.group(5)) == 2 * per_editor   # greedy: the same text every time
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["reference"] == "serve" and data["meta"]["editors"] == [1, 2]
    assert data["meta"]["skipped"] == {} and "serve" in data["meta"]["servers"]
    assert data["summary_line"] == r.stdout.strip().splitlines()[-1]
    s = data["summary"]["serve"]
    assert set(s) == {"1", "2"}
    for n, a in s.items():
        assert a["requests"] == int(n) * per_editor and a["errors"] == 0
        assert a["generated"] > 0 and a["throughput_tok_s"] > 0 and a["tok_s_per_request"] > 0
        assert a["latency_ms_p50"] <= a["latency_ms_p95"] and a["ttft_ms_p50"] <= a["ttft_ms_p95"]
        assert a["accepted_per_step"] >= 1                     # serve reports its steps
    rows = data["rows"]
    assert len(rows) == 3 * per_editor and not data["divergences"]
    assert all(row["streamed_text_matches"] for row in rows)   # the SSE chunks add up to the final text
    assert all(row["ttft_ms"] <= row["latency_ms"] for row in rows)
    assert {(row["editors"], row["editor"]) for row in rows} == {(1, 0), (2, 0), (2, 1)}
    # editor 1 starts at the second task: editors are in different files at a time
    firsts = [min((row for row in rows if row["editors"] == 2 and row["editor"] == e), key=lambda x: x["start_s"])
              for e in (0, 1)]
    assert [f["task_id"] for f in firsts] == ["proj/line/0", "proj/function/1"]
    table = (out / "load.md").read_text()
    assert "| engine | editors |" in table and "| serve | 2 |" in table

    # the server's text is the model's greedy text (the in-process engine's) for the same request
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codeswift.engine import Engine, EngineConfig
    from codeswift.types import CompletionRequest
    engine = Engine.from_hf(AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32),
                            AutoTokenizer.from_pretrained(tiny_qwen), EngineConfig(measure_cost=False),
                            model_id=str(tiny_qwen))
    for p in plan[:2]:
        row = next(x for x in rows if (x["task_id"], x["request"]) == (p.task_id, p.request))
        assert row["text"] == engine.complete(CompletionRequest.from_json(p.body)).text


def test_load_mode_reports_an_engine_that_cannot_start(tasks_dir, tmp_path):
    out = tmp_path / "out"
    r = _bench(tmp_path / "no-such-model", tasks_dir, out, "--engines", "serve", "--editors", "1")
    assert r.returncode == 1, r.stderr[-3000:]                 # nothing measured, but no crash
    assert r.stdout.strip().splitlines()[-1] == \
        "throughput_vs_serve=- p95_vs_serve=- proposer_vs_ngram=- identical=0/0"
    data = json.loads((out / "results.json").read_text())
    assert "serve" in data["meta"]["skipped"] and "exited with status" in data["meta"]["skipped"]["serve"]
    assert "serve: skipped" in r.stderr


@pytest.mark.parametrize("flags, message", [
    (["--editors", "0"], "--editors: 0 is out of range"),
    (["--editors", "1,x"], "--editors: 'x' is not a number"),
    (["--engines", "serve,turbo"], "unknown engine 'turbo'"),
    (["--engines", "serve,serve"], "named twice"),
    (["--session-follow", "model"], "--session-follow gold"),
])
def test_load_mode_bad_flags(tasks_dir, tmp_path, flags, message):
    r = _bench(tmp_path / "unused", tasks_dir, tmp_path / "out", *flags)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()                      # refused before anything started


# -- the statistics -------------------------------------------------------------------------------
def test_percentile_interpolates_like_numpy():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 101):
        xs = rng.random(n).tolist()
        for q in (0, 5, 50, 95, 100):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None and percentile([None], 95) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    with pytest.raises(ValueError):
        percentile([1], 101)


def _row(engine, n, editor, task, req, text, start, end, gen, steps=None, ttft=None, error=None):
    return {"engine": engine, "editors": n, "editor": editor, "task_id": task, "request": req, "text": text,
            "start_s": start, "end_s": end, "latency_ms": (end - start) * 1000,
            "ttft_ms": (ttft if ttft is not None else end - start) * 1000, "generated": gen, "steps": steps,
            "error": error, "retries": 0}


def test_aggregate_and_identical_outputs():
    rows = [_row("serve", 1, 0, "t", 0, "abc", 0.0, 1.0, 10, steps=5, ttft=0.2),
            _row("serve", 1, 0, "t", 1, "xyz", 1.0, 2.0, 10, steps=5, ttft=0.4),
            _row("vllm", 1, 0, "t", 0, "abc", 0.0, 0.5, 10, ttft=0.1),
            _row("vllm", 1, 0, "t", 1, "xyQ", 0.5, 1.0, 10, ttft=0.1),
            {**_row("vllm-codeswift", 2, 0, "t", 0, "abc", 0.0, 0.25, 10, steps=2, ttft=0.05),
             "drafted_tokens": 12, "accepted_tokens": 8},
            _row("vllm-codeswift", 2, 1, "t", 0, "", 0.0, 0.5, 0, error="HTTP 500: boom")]
    ref, div = mark_identical(rows)
    assert ref == "vllm"                                       # plain vLLM is the reference when it ran
    assert [r["identical"] for r in rows] == [True, False, None, None, True, None]
    assert div == [{"engine": "serve", "editors": 1, "editor": 0, "task_id": "t", "request": 1, "reference": "vllm",
                    "at_char": 2, "text": "z", "reference_text": "Q", "near_tie": None}]
    agg = aggregate(rows)
    s = agg["serve"][1]
    assert (s["requests"], s["errors"], s["generated"], s["wall_s"]) == (2, 0, 20, 2.0)
    assert s["throughput_tok_s"] == 10.0 and s["tok_s_per_request"] == 10.0
    assert s["latency_ms_p50"] == 1000.0 and s["ttft_ms_p50"] == pytest.approx(300.0)
    assert s["ttft_ms_p95"] == pytest.approx(390.0) and s["accepted_per_step"] == 2.0
    assert (s["identical"], s["compared"]) == (1, 2)
    assert agg["vllm"][1]["accepted_per_step"] is None          # no steps reported: "-" in the table
    vc = agg["vllm-codeswift"][2]
    assert (vc["requests"], vc["errors"], vc["generated"], vc["throughput_tok_s"]) == (2, 1, 10, 40.0)
    assert vc["draft_acceptance"] == pytest.approx(8 / 12) and s["draft_acceptance"] is None
    # only serve is there: serve's own first answers are the reference
    only = [r for r in rows if r["engine"] == "serve"]
    assert mark_identical(only)[0] == "serve" and all(r["identical"] is None for r in only)


def test_summary_line():
    def a(thr, per, p95):
        return {"throughput_tok_s": thr, "tok_s_per_request": per, "latency_ms_p95": p95}
    summary = {"serve": {1: a(10, 10, 100), 4: a(20, 5, 400), 16: a(25, 2, 900)},
               "vllm-ngram": {1: a(30, 30, 50), 16: a(200, 12, 300)},
               "vllm-codeswift": {1: a(40, 45, 40), 4: a(90, 22, 100), 16: a(150, 10, 450)}}
    assert summary_line(summary, 7, 9) == \
        "throughput_vs_serve=6.00 p95_vs_serve=0.50 proposer_vs_ngram=1.50 identical=7/9"
    del summary["serve"][16]                                   # no 16: the most editors both ran
    assert summary_line(summary, 0, 0).startswith("throughput_vs_serve=4.50 p95_vs_serve=0.25 ")
    assert summary_line({"serve": summary["serve"]}, 3, 3) == \
        "throughput_vs_serve=- p95_vs_serve=- proposer_vs_ngram=- identical=3/3"


def test_flags_parse():
    assert parse_editors("16,1,4,4") == [1, 4, 16]
    assert parse_engines("vllm-ngram, serve") == ["vllm-ngram", "serve"]
    for bad in ("0", "-1", "", "1,,2", "2000"):
        with pytest.raises(BadInputError):
            parse_editors(bad)
    for bad in ("", "sglang", "serve,serve"):
        with pytest.raises(BadInputError):
            parse_engines(bad)


def test_sse_parser_and_editor_plans(tasks_dir):
    async def lines():
        for line in [": ping", "event: chunk", "data: {\"text\": \"a\"}", "", "event: done",
                     "data: {\"text\": \"a\",", "data:  \"x\": 1}", "", "data: tail"]:
            yield line

    async def collect():
        return [e async for e in sse_events(lines())]
    assert asyncio.run(collect()) == [("chunk", '{"text": "a"}'), ("done", '{"text": "a",\n "x": 1}'),
                                      (None, "tail")]
    plan = plan_session(load_tasks(tasks_dir), 2, 12, None)
    assert [p.request for p in plan if p.task_id == "proj/line/0"] == [0, 1]
    assert plan[1].body["prefix"].endswith("return a ")     # typed along the gold span
    e0, e1, e2 = (editor_plan(plan, i, 3) for i in range(3))
    assert [r["task_id"] for r in e0][0] == "proj/line/0" and e1[0]["task_id"] == "proj/function/1"
    assert [r["task_id"] for r in e2] == [r["task_id"] for r in e0]       # 2 tasks: editor 2 as editor 0
    assert sorted((r["task_id"], r["request"]) for r in e1) == sorted((p.task_id, p.request) for p in plan)
    assert e0[0]["body"]["stream"] is True and e0[0]["body"]["doc_id"] != e1[-1]["body"]["doc_id"]
    assert e0[0]["body"]["doc_id"].startswith("load-n3-e0/")


def test_engine_commands():
    import argparse

    from codeswift.bench.load_engines import ENGINES, EngineProcess
    args = argparse.Namespace(model="m", device="cpu", dtype="auto", backend="llamacpp", max_tokens=32,
                              vllm_spec_tokens=6, threads=None)
    cmds = {name: EngineProcess(name, args, 64, Path("/tmp")).command(9000) for name in ENGINES}
    assert cmds["serve"][3:] == ["serve", "--host", "127.0.0.1", "--port", "9000", "--model", "m", "--device", "cpu",
                                 "--dtype", "auto", "--backend", "llamacpp", "--corpus", "off", "--queue-size", "128",
                                 "--max-tokens", "32", "--log-level", "warning"]
    for name, spec in (("vllm", "none"), ("vllm-ngram", "ngram"), ("vllm-codeswift", "codeswift")):
        assert "--backend" not in cmds[name]                            # vLLM runs the model itself
        tail = cmds[name][len(cmds["serve"]) - 2:]
        assert tail[:4] == ["--engine", "vllm", "--vllm-spec", spec] and "--vllm-max-seqs" in tail
        assert ("--vllm-spec-tokens" in tail) == (spec != "none")       # plain vLLM drafts nothing


def test_an_engine_that_dies_is_reported_by_its_own_last_words(tmp_path):
    import argparse

    from codeswift.bench.load_engines import EngineProcess
    e = EngineProcess("vllm", argparse.Namespace(), 1, tmp_path)
    e.log_path.write_text("INFO starting\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                          "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
                          "  Value error, max_model_len (8192) is greater than the derived max_model_len\n"
                          "    For further information visit https://errors.pydantic.dev\n")
    assert e.last_words() == ("pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig "
                              "Value error, max_model_len (8192) is greater than the derived max_model_len")
    e.log_path.write_text("Loading\ncodeswift: error: vLLM is not installed in this python\nbye\n")
    assert e.last_words() == "codeswift: error: vLLM is not installed in this python"
    e.log_path.write_text("")
    assert e.last_words() == "no output"
