"""Faults: an indexer killed with SIGKILL at random points leaves the old index or the new one,
never a broken one; corrupt or truncated index and cache files are rebuilt with a message, no
traceback; two writers take turns on one index (flock); a full disk fails in one line."""
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datastore import storage
from datastore.repo_index import INDEX_FILE, KIND, RepoIndex
from datastore.tokens import fingerprint
from reliability_kit import build_index, indexer, record, scale

KILLS = scale("KILL_RUNS", 6)
INDEXER = indexer()


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_qwen)


def make_repo(root: Path, files: int = 40, version: int = 0) -> Path:
    for i in range(files):
        pkg = root / f"pkg{i % 5}"
        pkg.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f_{i}_{j}(x):\n    return x * {j + version}\n\n" for j in range(60))
        (pkg / f"mod{i}.py").write_text(body)
    return root


def check_index(path: Path, tok) -> int:
    """The files in the saved index (0 when there is none yet); fails on a broken one."""
    from datastore.docstore import DocStore
    try:
        meta, arrays = storage.load(path, KIND, fingerprint(tok))
    except FileNotFoundError:
        return 0
    return len(DocStore.from_saved(meta, arrays).files)


def start_build(root: Path, model: Path, out: Path):
    """A child process that builds the index (SIGKILL-able: `.kill()`)."""
    child = INDEXER.Process(target=build_index, args=(str(root), str(model), str(out)))
    child.start()
    return child


def test_sigkill_at_random_points_leaves_old_or_new(tmp_path, tiny_qwen, tokenizer):
    root, out = make_repo(tmp_path / "repo"), tmp_path / "idx"
    index_file = out / INDEX_FILE
    rng = random.Random(9)
    t0 = time.perf_counter()
    timing = start_build(root, tiny_qwen, tmp_path / "timing")
    timing.join(60)
    run_s = time.perf_counter() - t0                 # child start + tokenizer + walk + build + save
    outcomes = {"before_write": 0, "mid_write": 0, "after_write": 0}
    for run in range(KILLS):
        (root / "pkg0" / "mod0.py").write_text(f"def changed_{run}():\n    return {run}\n")   # a new index to write
        before = index_file.stat().st_mtime_ns if index_file.exists() else None
        child = start_build(root, tiny_qwen, out)
        time.sleep(rng.uniform(0, run_s))
        mid = any(out.glob(f".{INDEX_FILE}.*.tmp"))
        child.kill()
        child.join()
        after = index_file.stat().st_mtime_ns if index_file.exists() else None
        outcomes["mid_write" if mid else "after_write" if after != before else "before_write"] += 1
        assert check_index(index_file, tokenizer) in (0, 40)        # old, new or none: never broken
    index = RepoIndex.open_or_build(root, tokenizer, out, progress=False)
    assert index.report.files == 40 and index.save_error is None
    assert [d[0] for d in index.definitions(f"changed_{KILLS - 1}")] == ["pkg0/mod0.py"]
    assert not list(out.glob(f".{INDEX_FILE}.*.tmp"))                # the killed writers' temp files are gone
    record("kill_index", runs=KILLS, child_s=round(run_s, 3), **outcomes)


def test_sigkill_of_the_codeswift_index_command(tmp_path, tiny_qwen, tokenizer):
    root = make_repo(tmp_path / "repo", files=10)
    cmd = [sys.executable, "-m", "codeswift.cli", "index", str(root), "--model", str(tiny_qwen), "--quiet"]
    runs = max(1, KILLS // 6)
    for run in range(runs):
        (root / "pkg1" / "mod1.py").write_text(f"def cli_run_{run}():\n    pass\n")
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.Random(run).uniform(1.0, 4.0))             # start-up, walk, build or save
        child.kill()
        child.wait()
        assert check_index(root / ".codeswift" / INDEX_FILE, tokenizer) in (0, 10)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "codeswift index: 10 files" in done.stdout, done.stderr
    record("kill_index_cli", runs=runs)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "wrong_arrays"])
def test_a_corrupt_index_is_rebuilt_with_a_message(tmp_path, tokenizer, damage, caplog):
    root, out = make_repo(tmp_path / "repo", files=5), tmp_path / "idx"
    RepoIndex.open_or_build(root, tokenizer, out, progress=False)
    f = out / INDEX_FILE
    data = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(data[:len(data) // 3])
    elif damage == "flip":
        f.write_bytes(data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:])
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "garbage":
        f.write_bytes(os.urandom(4096))
    else:
        import numpy as np
        meta, arrays = storage.load(f, KIND, fingerprint(tokenizer))
        arrays["rsa"] = arrays["rsa"][::-1][:10]
        storage.save(f, KIND, fingerprint(tokenizer), {k: v for k, v in meta.items()
                                                        if k not in ("format", "version", "fingerprint")},
                     {**arrays, "tokens": np.asarray(arrays["tokens"], np.int32)})
    index = RepoIndex.open_or_build(root, tokenizer, out, progress=False)
    assert index.report.reason == "rebuilt (corrupt)" and index.report.files == 5
    assert "corrupt index, rebuilding" in caplog.text
    assert check_index(f, tokenizer) == 5


def test_a_corrupt_index_through_the_cli_is_one_summary_line(tmp_path, tiny_qwen):
    root = make_repo(tmp_path / "repo", files=3)
    (root / ".codeswift").mkdir()
    (root / ".codeswift" / INDEX_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "index", str(root), "--model", str(tiny_qwen),
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr + r.stdout
    assert "[rebuilt (corrupt)]" in r.stdout


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b'{"ks": 5, "ms": "x"}', b'{"ks": [1], "ms": ["a"]}',
                                     b"\xff\xfe\x00", b"null"])
def test_a_corrupt_cost_curve_is_measured_again(engine, tmp_path, monkeypatch, content):
    from codeswift import budget
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    backend = engine.backend
    path = budget.cache_path(engine.model_id, budget.device_key(backend), backend.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    curve = budget.load_or_measure(backend, engine.model_id, len(engine.tokenizer))
    assert curve.ks == budget.KS and budget.plausible(curve)
    assert json.loads(path.read_text())["ks"] == list(budget.KS)          # rewritten whole


def test_two_writers_take_turns(tmp_path, tiny_qwen, tokenizer):
    root, out = make_repo(tmp_path / "repo", files=10), tmp_path / "idx"
    index_file = out / INDEX_FILE
    with storage.locked(index_file):
        child = start_build(root, tiny_qwen, out)
        child.join(3.0)
        assert child.is_alive() and not index_file.exists()     # the second writer waits for the lock
    child.join(60)
    assert child.exitcode == 0 and check_index(index_file, tokenizer) == 10
    (root / "pkg2" / "extra.py").write_text("def extra():\n    pass\n")
    children = [start_build(root, tiny_qwen, out) for _ in range(3)]    # several at once
    for c in children:
        c.join(60)
    assert [c.exitcode for c in children] == [0, 0, 0]
    assert check_index(index_file, tokenizer) == 11


def _small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_full_disk_fails_in_one_line(tmp_path, tiny_qwen, tokenizer):
    root = make_repo(tmp_path / "repo", files=20)
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "index", str(root), "--model", str(tiny_qwen),
                        "--quiet"], capture_output=True, text=True, timeout=120, preexec_fn=_small_files)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"codeswift: error: could not save the index to {root.resolve() / '.codeswift' / INDEX_FILE}: File too large"]
    assert not list((root / ".codeswift").glob("*.tmp")) and not (root / ".codeswift" / INDEX_FILE).exists()
    index = RepoIndex.open_or_build(root, tokenizer, progress=False)          # room again: it builds
    assert index.report.files == 20 and index.save_error is None
