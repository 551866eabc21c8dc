"""`codeswift index` and `codeswift corpus build` as registered subcommands."""
import argparse

import pytest

import datastore.cli as cli


@pytest.fixture
def run(tokenizer, monkeypatch):
    monkeypatch.setattr(cli, "_tokenizer", lambda spec: tokenizer)
    ap = argparse.ArgumentParser(prog="codeswift")
    sub = ap.add_subparsers(dest="command")
    cli.register(sub)

    def run(*argv):
        args = ap.parse_args(list(argv))
        return args.func(args)
    return run


def test_index_builds_then_reuses(run, make_tree, capsys):
    repo = make_tree({"a.py": "def f():\n    return 1\n", "b.js": "function g() { return 2; }\n"})
    assert run("index", str(repo), "--quiet") == 0
    out = capsys.readouterr().out
    assert "codeswift index: 2 files (2 processed, 0 reused, 0 skipped, 0 removed), 2 chunks" in out
    assert "[fresh]" in out and f"saved to {repo / '.codeswift' / 'repo-index.npz'}" in out
    assert run("index", str(repo), "--quiet") == 0
    assert "[unchanged]" in capsys.readouterr().out


def test_index_out_dir(run, make_tree, tmp_path):
    repo = make_tree({"a.py": "x = 1\n"})
    assert run("index", str(repo), "--out", str(tmp_path / "idx"), "--quiet") == 0
    assert (tmp_path / "idx" / "repo-index.npz").is_file()


@pytest.mark.parametrize("target, message", [("missing", "no such folder"), ("file.py", "not a folder")])
def test_bad_paths_exit_2_with_one_line(run, tmp_path, capsys, target, message):
    (tmp_path / "file.py").write_text("x = 1\n")
    assert run("index", str(tmp_path / target)) == 2
    assert run("corpus", "build", str(tmp_path / target), "--out", str(tmp_path / "c")) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("codeswift: error: " + message) for line in err)


def test_corpus_build(run, make_tree, tmp_path, capsys):
    src = make_tree({"m.py": "def f():\n    return 1\n"}, name="lib")
    assert run("corpus", "build", str(src), "--out", str(tmp_path / "c"), "--quiet") == 0
    assert (tmp_path / "c" / "corpus.npz").is_file()
    assert "units (hashed)" in capsys.readouterr().out


def test_main_cli_wires_the_subcommands(tmp_path, capsys):
    from codeswift.cli import main
    assert main(["index", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"codeswift: error: no such folder: {tmp_path / 'missing'}"
