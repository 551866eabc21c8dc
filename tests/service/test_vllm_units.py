"""`serve --engine vllm` and codeswift's vLLM proposer, the parts that need no vLLM: chains from
codeswift's sources given token ids, the request-id plumbing the runner hook does, the
arguments, the re-exec decision and the setup's bookkeeping. vLLM itself: test_vllm_real.py."""
from __future__ import annotations

import argparse
import json
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from codeswift.errors import CodeswiftError
from codeswift.sources import PREF, REPO
from codeswift.vllm.chains import ChainDrafter, RequestArgs, accepted_count, best_chain
from codeswift.tree import build_tree, pad

PROMPT = [5, 6, 7, 8, 9, 10, 11, 12, 5, 6, 7]     # 5 6 7 occurred before, followed by 8 9 10 11


def test_context_chain_is_the_earlier_continuation_cut_to_k():
    d = ChainDrafter(k=3, sources=("context",))
    assert d.propose("a", PROMPT, prompt_len=len(PROMPT)) == [8, 9, 10]
    d4 = ChainDrafter(k=8, sources=("context",))
    chain = d4.propose("a", PROMPT, prompt_len=len(PROMPT))
    assert chain[:5] == [8, 9, 10, 11, 12] and len(chain) <= 8


def test_no_match_no_chain():
    d = ChainDrafter(k=4, sources=("context",))
    assert d.propose("a", [1, 2, 3, 4], prompt_len=4) == []


def test_learning_from_what_the_engine_emitted():
    d = ChainDrafter(k=3, sources=("context",))
    toks = list(PROMPT)
    assert d.propose("a", toks, len(PROMPT)) == [8, 9, 10]
    toks += [8, 9, 42]                            # two drafts accepted, then the model's own token
    d.propose("a", toks, len(PROMPT))
    assert d.request_counts("a") == (3 + len(d._live["a"].last[2]), 2)
    assert d.totals.accepted == 2
    assert any(st.observed for st in d.stats.values())


def test_requests_are_independent_and_state_follows_the_request_id():
    d = ChainDrafter(k=2, sources=("context",))
    other = [20, 21, 22, 23, 20, 21]
    assert d.propose("a", PROMPT, len(PROMPT)) == [8, 9]
    assert d.propose("b", other, len(other)) == [22, 23]
    assert d.propose("a", PROMPT + [8, 9, 10], len(PROMPT)) == [11, 12]
    assert set(d.live()) == {"a", "b"}
    d.finish("a")
    assert d.live() == ["b"]


def test_max_tokens_reached_means_no_chain():
    d = ChainDrafter(k=4, sources=("context",))
    args = RequestArgs(max_tokens=2)
    assert len(d.propose("a", PROMPT, len(PROMPT), args)) <= 1   # one token left to emit: nothing past it
    assert d.propose("a", PROMPT + [8, 9], len(PROMPT)) == []


def test_best_chain_skips_branches_and_padding():
    tree = build_tree(1, [([2, 3, 4], 3.0, "context", 0.9), ([2, 7], 1.0, "context", 0.9)], 16)
    assert best_chain(tree, 8) == [2, 3, 4]
    assert best_chain(tree, 2) == [2, 3]
    assert best_chain(pad(tree, len(tree) + 3), 8) == [2, 3, 4]


def test_accepted_count():
    assert accepted_count([8, 9, 10], [8, 9, 42]) == 2
    assert accepted_count([8, 9, 10], [8, 9, 10, 11]) == 3
    assert accepted_count([8, 9, 10], [7]) == 0
    assert accepted_count([], [7]) == 0


def test_request_args_round_trip_and_bad_types():
    a = RequestArgs(repo="/r", doc_id="d", path="x.py", prefix="def f(", suffix=")", max_tokens=8)
    assert RequestArgs.from_extra(a.to_extra()) == a
    assert RequestArgs.from_extra({"unrelated": 1}) == RequestArgs()
    assert RequestArgs.from_extra(None) == RequestArgs()
    with pytest.raises(ValueError, match="codeswift_repo"):
        RequestArgs.from_extra({"codeswift_repo": 3})
    with pytest.raises(ValueError, match="max_tokens"):
        RequestArgs.from_extra({"codeswift_max_tokens": 0})


def test_unknown_source_and_bad_k():
    with pytest.raises(ValueError, match="unknown chain sources"):
        ChainDrafter(k=4, sources=("context", "corpus"))
    with pytest.raises(ValueError, match="k"):
        ChainDrafter(k=0)


def test_batch_rows_prefill_rows_finished_ids_and_shared_pref_cache():
    d = ChainDrafter(k=4, sources=("context", "pref"))
    rows = np.zeros((3, 64), np.int32)
    p1 = [30, 31, 32, 33]
    rows[0, :4] = p1
    rows[1, :len(PROMPT)] = PROMPT
    extra = {"r1": {"codeswift_doc_id": "doc"}, "r2": None, "r3": {"codeswift_doc_id": "doc"}}
    out = d.propose_batch(["r1", "r2"], rows, [4, len(PROMPT)], [4, len(PROMPT)], [[33], []], extra.get)
    assert out[1] == []                           # sampled nothing (a prefill chunk): no chain
    assert d.live() == ["r1"]
    gen = [40, 41, 42, 43, 44, 45]                # what the model wrote for r1
    rows[0, 4:10] = gen
    d.propose_batch(["r1"], rows, [10], [4], [[45]], extra.get)
    # r1 finishes; r3 asks with the same prompt: the preference cache has r1's answer
    rows[2, :4] = p1
    out = d.propose_batch(["r3"], rows[2:], [4], [4], [[33]], extra.get, finished=["r1"])
    assert "r1" not in d.live()
    assert out[0] == gen[:4]
    assert d.totals.by_source.get(PREF, 0) >= 0


def test_a_bad_xarg_costs_the_drafts_not_the_request():
    d = ChainDrafter(k=2, sources=("context",))
    rows = np.asarray([PROMPT], np.int32)
    out = d.propose_batch(["x"], rows, [len(PROMPT)], [len(PROMPT)], [[7]], lambda rid: {"codeswift_repo": 5})
    assert out == [[8, 9]]


def test_repository_drafts_for_the_request_that_names_it(tmp_path, tiny_qwen):
    from transformers import AutoTokenizer

    from datastore.repo_index import RepoIndex
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    repo = tmp_path / "repo"
    repo.mkdir()
    body = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"
    (repo / "fib.py").write_text(body)
    d = ChainDrafter(k=6, sources=("repo",), special_ids=tok.all_special_ids,
                     open_repo=lambda root: RepoIndex.open_or_build(root, tok, progress=False))
    ids = tok.encode(body, add_special_tokens=False)
    cut = len(tok.encode("def fibonacci(n):\n    if n", add_special_tokens=False))
    prompt = tok.encode("x = 1\n", add_special_tokens=False) + ids[:cut]
    args = RequestArgs(repo=str(repo))
    assert d.propose("a", prompt, len(prompt), args) == []      # the index opens in the background
    deadline = time.monotonic() + 60
    while d.repo_index(str(repo)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.repo_index(str(repo)) is not None, d.repo_error(str(repo))
    chain = d.propose("a", prompt + [], len(prompt))
    assert chain and chain == ids[cut:cut + len(chain)]
    assert any(s.name == REPO for s in d._live["a"].drafter.sources)
    # a request without a repository draws nothing from it
    assert d.propose("b", prompt, len(prompt)) == []


def test_a_bad_repository_is_remembered_as_an_error(tmp_path):
    def open_repo(root):
        raise FileNotFoundError(f"no such folder: {root}")
    d = ChainDrafter(k=2, sources=("repo",), open_repo=open_repo)
    d.repo_index(str(tmp_path / "nope"))
    deadline = time.monotonic() + 10
    while d.repo_error(str(tmp_path / "nope")) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "no such folder" in d.repo_error(str(tmp_path / "nope"))


# -- the runner hook's plumbing (plain objects shaped like vLLM's) ----------------------------
def test_batch_info_from_a_runner_shaped_object():
    from codeswift.vllm.proposer import batch_info
    runner = SimpleNamespace(
        input_batch=SimpleNamespace(req_ids=["a", "b"], num_prompt_tokens=np.asarray([11, 4, 0, 0])),
        requests={"a": SimpleNamespace(sampling_params=SimpleNamespace(extra_args={"codeswift_repo": "/r"})),
                  "b": SimpleNamespace(sampling_params=SimpleNamespace(extra_args=None))})
    info = batch_info(runner, SimpleNamespace(finished_req_ids={"z"}))
    assert info.req_ids == ["a", "b"] and info.prompt_lens == [11, 4]
    assert info.extra_of("a") == {"codeswift_repo": "/r"} and info.extra_of("b") is None
    assert info.extra_of("gone") is None
    assert info.finished == ("z",)


# -- serve arguments and where vLLM runs ---------------------------------------------------
def _serve_args(*argv):
    from service.cli import register
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers())
    return ap.parse_args(["serve", *argv])


def test_serve_defaults_stay_the_codeswift_engine():
    a = _serve_args()
    assert a.engine == "codeswift" and a.vllm_spec == "codeswift" and a.vllm_spec_tokens == 4
    from service.cli import check_args
    check_args(a)


@pytest.mark.parametrize("argv, msg", [
    (["--engine", "vllm", "--vllm-spec-tokens", "0"], "--vllm-spec-tokens"),
    (["--engine", "vllm", "--vllm-max-model-len", "10"], "--vllm-max-model-len"),
    (["--engine", "vllm", "--vllm-max-seqs", "0"], "--vllm-max-seqs"),
    (["--engine", "vllm", "--vllm-python", "/nonexistent/python"], "not an executable"),
    (["--engine", "vllm", "--backend", "llamacpp"], "--backend"),
])
def test_bad_vllm_arguments_are_refused_before_anything_starts(argv, msg):
    from service.cli import check_args
    with pytest.raises(CodeswiftError, match=msg):
        check_args(_serve_args(*argv))


def test_bad_spec_choice_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        _serve_args("--engine", "vllm", "--vllm-spec", "eagle")


def test_serve_cli_exits_2_with_one_line_when_no_vllm_anywhere(tmp_path, monkeypatch):
    import subprocess
    env = {**__import__("os").environ, "CODESWIFT_CACHE": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "codeswift.cli", "serve", "--engine", "vllm", "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=120)
    import importlib.util
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is importable in this python")
    assert res.returncode == 2
    assert "codeswift setup vllm" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_target_python_order(tmp_path):
    from service.vllm_cli import target_python
    py = tmp_path / "python"
    py.write_text("")
    a = _serve_args("--engine", "vllm", "--vllm-python", str(py))
    assert target_python(a, here_has_vllm=True) == str(py)
    a = _serve_args("--engine", "vllm")
    assert target_python(a, here_has_vllm=True) == sys.executable
    assert target_python(a, here_has_vllm=False, recorded="/venv/bin/python") == "/venv/bin/python"


def test_reexec_plan(tmp_path):
    from service.vllm_cli import REEXEC_ENV, reexec_plan
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib").mkdir()
    py = venv / "bin" / "python"
    py.write_text("")
    a = _serve_args("--engine", "vllm")
    argv = ["serve", "--engine", "vllm", "--port", "9"]
    cmd, env = reexec_plan(a, argv, env={}, here_has_vllm=False, recorded=str(py))
    assert cmd == [str(py), "-m", "codeswift.cli", *argv] and env[REEXEC_ENV] == "1"
    assert "LD_PRELOAD" not in env                               # no libiomp5 there
    # vLLM importable here and no libiomp5: serve here
    assert reexec_plan(a, argv, env={}, here_has_vllm=True) is None
    # the environment has libiomp5: LD_PRELOAD gets it, in a re-executed child
    (venv / "lib" / "libiomp5.so").write_text("")
    cmd, env = reexec_plan(a, argv, env={"LD_PRELOAD": "/x.so"}, here_has_vllm=False, recorded=str(py))
    assert env["LD_PRELOAD"] == f"{venv / 'lib' / 'libiomp5.so'}:/x.so"
    # the child never re-executes again; if it is the wrong python, it says so
    assert reexec_plan(a, argv, env={REEXEC_ENV: "1"}, here_has_vllm=True) is None
    with pytest.raises(CodeswiftError, match="re-executed"):
        reexec_plan(a, argv, env={REEXEC_ENV: "1"}, here_has_vllm=False, recorded=str(py))


def test_speculative_configs_for_vllm():
    from service.vllm_engine import VllmSettings, engine_kwargs, speculative_config
    assert speculative_config("none", 4) is None
    assert speculative_config("ngram", 4)["method"] == "ngram"
    cs = speculative_config("codeswift", 3)
    assert cs == {"method": "custom_class", "model": "codeswift.vllm.proposer.CodeswiftProposer",
                  "num_speculative_tokens": 3}
    kw = engine_kwargs(VllmSettings(model="/m", spec="codeswift", spec_tokens=3))
    assert kw["per_request_spec_decode_metrics"] == "summary" and kw["speculative_config"] == cs
    assert "speculative_config" not in engine_kwargs(VllmSettings(model="/m", spec="none"))
    with pytest.raises(CodeswiftError):
        speculative_config("eagle", 4)


def test_the_proposer_class_path_resolves():
    import importlib
    from service.vllm_engine import PROPOSER_CLASS
    mod, _, name = PROPOSER_CLASS.rpartition(".")
    assert hasattr(importlib.import_module(mod), name)       # importable without vLLM
    assert "vllm" not in sys.modules or importlib.util.find_spec("vllm") is not None


# -- setup bookkeeping ---------------------------------------------------------------------
def test_recorded_python_and_environment(tmp_path, monkeypatch):
    from codeswift.vllm import setup
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    assert setup.recorded_python() is None
    setup.record_path().parent.mkdir(parents=True)
    setup.record_path().write_text(json.dumps({"python": sys.executable}))
    assert setup.recorded_python() == sys.executable
    setup.record_path().write_text(json.dumps({"python": str(tmp_path / "gone")}))
    assert setup.recorded_python() is None
    setup.record_path().write_text("not json")
    assert setup.recorded_python() is None


def test_setup_refuses_a_folder_that_is_not_a_venv(tmp_path):
    from codeswift.vllm.setup import setup_vllm
    (tmp_path / "v").mkdir()
    with pytest.raises(CodeswiftError, match="not a virtual environment"):
        setup_vllm(tmp_path / "v", log=lambda s: None)


def test_setup_is_a_cli_choice():
    from codeswift.cli import build_parser
    a = build_parser().parse_args(["setup", "vllm", "--venv", "/tmp/x"])
    assert a.what == "vllm" and a.venv == "/tmp/x"


def test_probe_failure_is_reduced_to_its_root_cause():
    from codeswift.vllm.setup import root_cause
    lines = [
        "(VllmWorker-0 pid=1) ERROR 12-02 [multiproc_executor.py:953] WorkerProc failed to start.",
        "(VllmWorker-0 pid=1) ERROR 12-02 [multiproc_executor.py:953] ValueError: Available memory on node 0 is low",
        "(EngineCore pid=2) ERROR 12-02 [core.py:1510] Exception: WorkerProc initialization failed due to an exception",
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    ]
    assert root_cause(lines) == "ValueError: Available memory on node 0 is low"
    assert root_cause(["probe: outputs differ: plain [1] vs codeswift [2]"]).startswith("probe: outputs differ")
    assert root_cause(["Segmentation fault"]) == "Segmentation fault"
    assert root_cause([]) == "no output"


def test_vllm_start_errors_are_one_line():
    from service.vllm_engine import start_error
    e = ValueError("1 validation error for ModelConfig\n  Value error, max_model_len (8192) is too long [type=value_error]")
    assert start_error(e) == "ValueError: max_model_len (8192) is too long [type=value_error]"
    assert start_error(RuntimeError("boom\nmore")) == "RuntimeError: boom"


def test_model_context_from_config(tmp_path):
    from service.vllm_engine import model_context
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    assert model_context(str(tmp_path)) == 4096
    assert model_context(str(tmp_path / "missing")) is None
