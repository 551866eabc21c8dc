"""The automatic general corpus (codeswift/std_corpus.py): what the plan takes under the cap,
incremental builds with progress, the engine attaching it while serving, lossless with it."""
from __future__ import annotations

import pytest

from codeswift import std_corpus
from codeswift.errors import CodeswiftError
from codeswift.std_corpus import build_auto, corpus_plan, open_auto, parse_setting, workspace_site_packages

FUNC = "def {name}(items, key=None):\n    \"\"\"Sort {name}.\"\"\"\n    out = []\n    for x in items:\n" \
       "        out.append(key(x) if key else x)\n    return sorted(out)\n\n"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def pythonlike(tmp_path):
    """A fake standard library and site-packages, with tests and metadata to leave out."""
    std = tmp_path / "lib" / "python3.x"
    _write(std / "alpha.py", FUNC.format(name="alpha") * 20)
    _write(std / "email" / "utils.py", FUNC.format(name="parse_addr") * 10)
    _write(std / "test" / "test_alpha.py", FUNC.format(name="test_alpha") * 50)
    _write(std / "idlelib" / "editor.py", FUNC.format(name="editor") * 50)
    site = tmp_path / "site-packages"
    _write(site / "small" / "__init__.py", FUNC.format(name="small") * 2)
    _write(site / "medium" / "__init__.py", FUNC.format(name="medium") * 8)
    _write(site / "medium" / "tests" / "test_m.py", FUNC.format(name="tm") * 80)
    _write(site / "huge" / "__init__.py", FUNC.format(name="huge") * 400)
    _write(site / "_private" / "__init__.py", FUNC.format(name="private"))
    _write(site / "thing-1.0.dist-info" / "METADATA", "Name: thing\n")
    _write(site / "notapkg" / "data.py", FUNC.format(name="data"))       # no __init__.py
    return std, site


def test_plan_takes_stdlib_then_smallest_packages_under_the_cap(pythonlike):
    std, site = pythonlike
    size = len(FUNC.format(name="alpha"))
    plan = corpus_plan(max_mb=(size * 45) / 2**20, stdlib=std, site_packages=site)
    assert plan.stdlib == std and plan.site_packages == site
    assert [p.name for p in plan.packages] == ["medium", "small"]        # huge is over the cap
    assert plan.left_out == ("huge",)
    assert plan.roots == [std, site / "medium", site / "small"]
    # stdlib without test/ and idlelib/, small and medium without their tests
    want = [std / "alpha.py", std / "email" / "utils.py", site / "small" / "__init__.py", site / "medium" / "__init__.py"]
    assert plan.bytes == sum(p.stat().st_size for p in want)
    assert "over the cap" in plan.describe()


def test_plan_checks_the_cap():
    with pytest.raises(ValueError, match="size cap"):
        corpus_plan(max_mb=0)
    with pytest.raises(ValueError):
        corpus_plan(max_mb=std_corpus.MAX_MB_LIMIT + 1)


def test_workspace_venv_site_packages_is_preferred(tmp_path):
    ws = tmp_path / "project"
    site = ws / ".venv" / "lib" / "python3.11" / "site-packages"
    _write(site / "mylib" / "__init__.py", FUNC.format(name="mylib"))
    assert workspace_site_packages(str(ws)) is None                        # no pyvenv.cfg: not a venv
    _write(ws / ".venv" / "pyvenv.cfg", "home = /usr/bin\n")
    assert workspace_site_packages(str(ws)) == site
    plan = corpus_plan(str(ws), max_mb=64)          # the real stdlib first (about 11 MiB)
    assert plan.site_packages == site and [p.name for p in plan.packages] == ["mylib"]
    assert workspace_site_packages(None) is None


def test_parse_setting():
    assert parse_setting("auto") == "auto"
    assert parse_setting(" off ") is None and parse_setting("none") is None and parse_setting(None) is None
    assert parse_setting("~/c").endswith("/c") and not parse_setting("~/c").startswith("~")


def test_build_is_capped_incremental_and_reports_progress(pythonlike, tiny_models, tmp_path, monkeypatch):
    from transformers import AutoTokenizer
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))
    tok = AutoTokenizer.from_pretrained(tiny_models["qwen2"])
    std, site = pythonlike
    plan = corpus_plan(max_mb=1, stdlib=std, site_packages=site)
    assert open_auto(tok) is None
    heard = []
    corpus = build_auto(tok, plan, listener=lambda stage, done, total: heard.append((stage, done, total)))
    rels = sorted(f.rel for f in corpus.store.files)
    assert rels == ["huge/__init__.py", "medium/__init__.py", "python3.x/alpha.py",
                    "python3.x/email/utils.py", "small/__init__.py"]           # no tests, no idlelib
    stages = {s for s, _, _ in heard}
    assert {"scanning", "embedding"} <= stages
    for stage in stages:                                       # every stage is heard finishing
        last = [(d, t) for s, d, t in heard if s == stage][-1]
        assert last[0] == last[1]
    assert corpus.path.parent == std_corpus.auto_dir(tok)
    again = build_auto(tok, plan)
    assert again.report.reason == "unchanged"
    _write(std / "alpha.py", FUNC.format(name="beta") * 20)
    changed = build_auto(tok, plan)
    assert changed.report.processed == 1 and changed.report.reused == 4
    assert open_auto(tok) is not None

    # A cap smaller than the stdlib keeps its first files in order, whole.
    small = corpus_plan(max_mb=len(FUNC.format(name="beta")) * 25 / 2**20, stdlib=std, site_packages=site)
    assert small.packages == ()
    capped = build_auto(tok, small)
    assert [f.rel for f in capped.store.files] == ["python3.x/alpha.py"]


def test_engine_uses_the_auto_corpus_once_attached_and_stays_lossless(pythonlike, tiny_models, tmp_path, monkeypatch):
    from codeswift.engine import Engine, EngineConfig
    from codeswift.types import CompletionRequest
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))
    engine = Engine.load(EngineConfig(model=str(tiny_models["qwen2"]), device="cpu", dtype="float32",
                                      measure_cost=False, corpus_dir="auto"))
    assert engine.corpus is None and "corpus" not in [s.name for s in engine.sources]
    std, site = pythonlike
    corpus = build_auto(engine.tokenizer, corpus_plan(max_mb=1, stdlib=std, site_packages=site))
    engine.attach_corpus(corpus)
    assert engine.corpus is corpus and [s.name for s in engine.sources].count("corpus") == 1
    prefix = FUNC.format(name="alpha") + "def alpha2(items, key=None):\n    \"\"\"Sort"
    spec = engine.complete(CompletionRequest(prefix=prefix, max_tokens=32))
    plain = engine.complete(CompletionRequest(prefix=prefix, max_tokens=32, speculative=False))
    assert spec.tokens == plain.tokens
    # a second engine opens the saved corpus at load
    again = Engine.load(EngineConfig(model=str(tiny_models["qwen2"]), device="cpu", dtype="float32",
                                     measure_cost=False, corpus_dir="auto"))
    assert again.corpus is not None and len(again.corpus.store.files) == len(corpus.store.files)
    engine.attach_corpus(None)
    assert "corpus" not in [s.name for s in engine.sources]


def test_a_missing_corpus_folder_is_one_clear_error(tiny_models, tmp_path):
    from codeswift.engine import Engine, EngineConfig
    with pytest.raises(CodeswiftError, match="codeswift corpus build"):
        Engine.load(EngineConfig(model=str(tiny_models["qwen2"]), device="cpu", dtype="float32",
                                 measure_cost=False, corpus_dir=str(tmp_path / "nowhere")))


def test_background_build_attaches_and_a_failure_is_one_line(pythonlike, tiny_models, tmp_path, monkeypatch):
    from codeswift.engine import Engine, EngineConfig
    from codeswift.std_corpus import build_in_background
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))
    engine = Engine.load(EngineConfig(model=str(tiny_models["qwen2"]), device="cpu", dtype="float32",
                                      measure_cost=False, corpus_dir="auto"))
    std, site = pythonlike
    lines = []
    build_in_background(engine, corpus_plan(max_mb=1, stdlib=std, site_packages=site), lines.append).join(60)
    assert engine.corpus is not None and len(engine.corpus.store.files) == 5
    assert lines[0].startswith("codeswift: building the corpus of") and "corpus ready: 5 files" in lines[1]
    lines.clear()
    empty = std_corpus.CorpusPlan(stdlib=None, site_packages=None)
    build_in_background(engine, empty, lines.append).join(60)
    assert "corpus build failed" in lines[-1] and engine.corpus is not None     # the old one stays
