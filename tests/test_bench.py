"""Benchmark plumbing: task loaders, method parsing, session requests, and a tiny end-to-end run."""
import gzip
import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from codeswift.bench.methods import parse_methods, reference
from codeswift.bench.tasks import RepoWorkspace, build_requests, load_tasks
from codeswift.errors import BadInputError


@pytest.fixture
def repo_dev(tmp_path):
    """A repo-dev style folder with one repository and two tasks."""
    src = tmp_path / "src" / "proj"
    src.mkdir(parents=True)
    original = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n"
    (src / "m.py").write_text(original)
    (tmp_path / "dev" / "repos").mkdir(parents=True)
    with tarfile.open(tmp_path / "dev" / "repos" / "proj.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="proj")
    cut = original.index("a - b")
    tasks = [{"task_id": "proj/line/0", "repo": "proj", "language": "py", "path": "m.py", "kind": "line",
              "prefix": original[:cut], "suffix": original[cut + 5:], "gold": "a - b"},
             {"task_id": "proj/function/1", "repo": "proj", "language": "py", "path": "m.py",
              "kind": "function", "prefix": original[:15], "suffix": original[32:], "gold": original[15:32]}]
    (tmp_path / "dev" / "tasks.jsonl").write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    return tmp_path / "dev", original


def test_repo_dev_loader_and_workspace_hides_gold(repo_dev):
    folder, original = repo_dev
    tasks = load_tasks(folder)
    assert [t.task_id for t in tasks] == ["proj/line/0", "proj/function/1"]
    assert tasks[0].stop == "line" and tasks[1].stop == "block"
    ws = RepoWorkspace()
    repo = ws.prepare(tasks[0])
    text = (repo / "m.py").read_text()
    assert text == tasks[0].prefix + tasks[0].suffix and "a - b" not in text
    repo = ws.prepare(tasks[1])              # the previous task's file is restored first
    assert (repo / "m.py").read_text() == tasks[1].prefix + tasks[1].suffix
    ws.restore()
    assert (repo / "m.py").read_text() == original
    ws.close()


def test_humaneval_loader(tmp_path):
    p = tmp_path / "HumanEval-SingleLineInfilling.jsonl.gz"
    with gzip.open(p, "wt") as f:
        f.write(json.dumps({"task_id": "HumanEval/0/L1", "prompt": "def f():\n", "suffix": "\n",
                            "canonical_solution": "    return 1", "entry_point": "f"}) + "\n")
    (t,) = load_tasks(p)
    assert (t.prefix, t.suffix, t.gold, t.kind, t.stop) == ("def f():\n", "\n", "    return 1", "line", "line")


def test_limit_spreads_and_bad_paths(repo_dev, tmp_path):
    folder, _ = repo_dev
    assert [t.task_id for t in load_tasks(folder, limit=1)] == ["proj/line/0"]
    with pytest.raises(BadInputError):
        load_tasks(tmp_path / "missing")


def test_methods_and_session_requests(repo_dev):
    assert parse_methods("codeswift,pld") == ["ar", "codeswift", "pld"]
    assert parse_methods("ar,codeswift-repo,codeswift-tree") == ["ar", "codeswift-repo", "codeswift-tree"]
    with pytest.raises(BadInputError):
        parse_methods("ar,turbo")
    # llama.cpp methods are their own family, compared with their own plain greedy run.
    assert parse_methods("codeswift-llamacpp,llamacpp-pld") == ["llamacpp-ar", "codeswift-llamacpp", "llamacpp-pld"]
    assert parse_methods("codeswift,codeswift-llamacpp-tree") == ["ar", "llamacpp-ar", "codeswift",
                                                                  "codeswift-llamacpp-tree"]
    assert reference("codeswift-llamacpp-cache") == "llamacpp-ar" and reference("codeswift", "pld") == "pld"
    with pytest.raises(BadInputError):
        parse_methods("codeswift,codeswift")
    task = load_tasks(repo_dev[0])[0]
    reqs = build_requests(task, "session", 3)
    assert [r.prefix[len(task.prefix):] for r in reqs] == ["", "a ", "a -"]
    assert build_requests(task, "cold", 3)[0].prefix == task.prefix


def test_bench_end_to_end_tiny(tiny_qwen, repo_dev, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "bench", "--model", str(tiny_qwen),
                        "--tasks", str(repo_dev[0]), "--methods", "ar,pld,codeswift,codeswift-tree",
                        "--max-tokens", "12", "--out", str(out), "--dtype", "float32", "--mode", "session",
                        "--session-requests", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("decode_speedup_vs_ar=") and last.endswith("identical=4/4")
    data = json.loads((out / "results.json").read_text())
    assert {row["method"] for row in data["rows"]} == {"ar", "pld", "codeswift", "codeswift-tree"}
    assert all(row["identical"] for row in data["rows"])     # fp32: every method == ar
    assert (out / "speedup.png").stat().st_size > 1000


def test_bench_session_following_the_model(tiny_qwen, repo_dev, tmp_path):
    """--session-follow model: after the first request the developer types along the model's own
    suggestion; the preference cache then drafts the rest of it."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "bench", "--model", str(tiny_qwen),
                        "--tasks", str(repo_dev[0]), "--limit", "1", "--methods", "codeswift,codeswift-cache",
                        "--max-tokens", "16", "--stop", "none", "--out", str(out), "--dtype", "float32",
                        "--mode", "session", "--session-follow", "model", "--session-requests", "3",
                        "--calibrate", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert data["meta"]["calibration_tasks"] == ["proj/function/1"]     # not the measured task
    ar = [row for row in rows if row["method"] == "ar"]
    assert len(ar) >= 2 and all(row["identical"] for row in rows)      # fp32: lossless
    assert [row["request"] for row in ar] == list(range(len(ar)))
    assert ar[0]["follows"] == "gold" and all(row["follows"] == "model" for row in ar[1:])
    typed = [row["typed_chars"] for row in ar]
    assert typed[0] == 0 and typed == sorted(set(typed)) and typed[-1] < len(ar[0]["text"])



def test_bench_mixed_session_through_the_completion_cache(tiny_qwen, repo_dev, tmp_path):
    """--session-follow mix: accepted words and typed gold interleave; every codeswift row says
    whether the LSP's completion cache would have answered it without a forward pass."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "bench", "--model", str(tiny_qwen),
                        "--tasks", str(repo_dev[0]), "--limit", "1", "--methods", "codeswift",
                        "--max-tokens", "16", "--stop", "none", "--out", str(out), "--dtype", "float32",
                        "--mode", "session", "--session-follow", "mix", "--session-requests", "4"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    rows = [row for row in data["rows"] if row["method"] == "codeswift"]
    assert len(rows) >= 2 and all(row["identical"] for row in data["rows"])
    assert all(row["follows"] == "mix" for row in rows[1:])
    typed = [row["typed_chars"] for row in rows]
    assert typed == sorted(set(typed))                                   # the developer moves forward
    assert all({"cache_hit", "cache_identical", "served_ms"} <= set(row) for row in rows)
    assert not rows[0]["cache_hit"] and rows[0]["served_ms"] > 0         # nothing cached yet
    summary = data["summary"]["codeswift"]
    assert summary["served_from_cache"] == sum(row["cache_hit"] for row in rows)
    assert "as the editor serves it" in r.stderr + r.stdout


SMOL = Path.home() / ".cache" / "codeswift" / "test-gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or not SMOL.is_file(),
                    reason="needs llama-cpp-python (codeswift[llamacpp]) and the SmolLM2 test GGUF")
def test_bench_llamacpp_methods(repo_dev, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "bench", "--model", str(SMOL),
                        "--tasks", str(repo_dev[0]), "--methods", "llamacpp-pld,codeswift-llamacpp",
                        "--max-tokens", "12", "--stop", "none", "--out", str(out), "--threads", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("decode_speedup_vs_ar=") and "identical=" in last
    data = json.loads((out / "results.json").read_text())
    assert {row["method"] for row in data["rows"]} == {"llamacpp-ar", "llamacpp-pld", "codeswift-llamacpp"}
    for row in data["rows"]:              # quantized: any divergence must start at a near-tie
        assert row["identical"] or row["near_tie"], row
    assert data["summary"]["codeswift-llamacpp"]["reference"] == "llamacpp-ar"


def test_word_cuts_stop_at_word_ends():
    from codeswift.bench.tasks import word_cuts
    shown = "return self.items.pop()"
    cuts = word_cuts(shown, 4)
    assert len(cuts) == 3 and cuts == sorted(cuts)
    assert all(shown[c - 1].isalnum() or shown[c - 1] in "._()" for c in cuts)
    assert word_cuts("", 4) == [] and word_cuts("x", 4) == []


def test_a_mixed_session_accepts_what_is_right_and_types_the_rest():
    from codeswift.bench.tasks import mixed_step
    gold = "return a + b\n"
    # the suggestion is right: up to half of its words are accepted at once
    assert mixed_step("", "return a + b\n", gold) == "return a"
    # right at first, then wrong: only the matching words
    assert mixed_step("", "return a - b", gold) == "return a"
    # wrong from the start: rejected, the developer types the gold's next word
    assert mixed_step("return a", " * c", gold) == "return a +"
    assert mixed_step("", "", gold) == "return"
    assert mixed_step(gold, "anything", gold) is None


@pytest.fixture
def long_repo(tmp_path):
    """A repo-dev style folder whose file is long enough for --mode long."""
    from codeswift.testing import SAMPLE_CODE
    src = tmp_path / "src" / "proj"
    src.mkdir(parents=True)
    text = SAMPLE_CODE + "\n" + "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12))
    (src / "long.py").write_text(text)
    (tmp_path / "dev" / "repos").mkdir(parents=True)
    with tarfile.open(tmp_path / "dev" / "repos" / "proj.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="proj")
    cut = text.index("def f3")
    task = {"task_id": "proj/line/0", "repo": "proj", "language": "py", "path": "long.py", "kind": "line",
            "prefix": text[:cut], "suffix": text[cut + 6:], "gold": "def f3"}
    (tmp_path / "dev" / "tasks.jsonl").write_text(json.dumps(task) + "\n")
    return tmp_path / "dev", text


def test_long_tasks_generate_a_file_from_its_first_lines(long_repo):
    from codeswift.bench.tasks import long_tasks
    (task,) = long_tasks(load_tasks(long_repo[0]), head_lines=6)
    text = long_repo[1]
    assert task.prefix == "".join(text.splitlines(keepends=True)[:6]) and task.suffix == ""
    assert task.prefix + task.gold == text and task.stop == "none"
    ws = RepoWorkspace()
    try:
        assert (ws.prepare(task) / "long.py").read_text() == task.prefix     # the rest cannot leak
    finally:
        ws.close()
    assert long_tasks(load_tasks(long_repo[0]), head_lines=len(text.splitlines())) == []


def test_bench_long_mode_with_a_penalty(tiny_qwen, long_repo, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "codeswift.cli", "bench", "--model", str(tiny_qwen), "--tasks", str(long_repo[0]),
           "--mode", "long", "--head-lines", "6", "--max-tokens", "300", "--out", str(out), "--dtype", "float32"]
    r = subprocess.run(cmd + ["--methods", "ar,codeswift", "--penalty", "1.3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    assert all(row["identical"] for row in data["rows"])         # penalised speculation == penalised ar
    cs = data["summary"]["codeswift"]
    assert cs["distinct_2"] is not None and cs["peak_rss_mb"] > 0 and cs["ttft_vs_ar"] is not None
    assert cs["tokens_per_step_by_256"] and all(c is None or c >= 1 for c in cs["tokens_per_step_by_256"])
    assert "tokens/step per 256 output tokens" in " ".join(r.stderr.split())
    bad = subprocess.run(cmd + ["--methods", "ar,pld,codeswift", "--penalty", "1.3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "pld cannot apply codeswift's penalty" in bad.stderr
