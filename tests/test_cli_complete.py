"""The CLI contract: JSON output, --no-speculation parity, one-line errors with exit 2."""
import json
import subprocess
import sys

import pytest

CODE = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n"


def run(*args):
    return subprocess.run([sys.executable, "-m", "codeswift.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "m.py"
    p.write_text(CODE)
    return p


def test_complete_json_speculative_equals_plain(tiny_qwen, src):
    a = run("complete", "--model", str(tiny_qwen), "--file", str(src), "--line", "7", "--col", "0",
            "--max-tokens", "16", "--json", "--dtype", "float32")
    b = run("complete", "--model", str(tiny_qwen), "--file", str(src), "--line", "7", "--col", "0",
            "--max-tokens", "16", "--json", "--dtype", "float32", "--no-speculation")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    assert ja["tokens"] == jb["tokens"] and ja["text"] == jb["text"] and len(ja["tokens"]) == 16
    assert {"steps", "accepted_per_step", "time_s"} <= set(ja["stats"])


def test_streamed_text_is_the_json_text(tiny_qwen, src):
    base = ("complete", "--model", str(tiny_qwen), "--file", str(src), "--line", "7", "--col", "0",
            "--max-tokens", "24", "--dtype", "float32", "--penalty", "1.2")
    streamed, plain, js = run(*base), run(*base, "--no-stream"), run(*base, "--json")
    assert streamed.returncode == plain.returncode == js.returncode == 0, streamed.stderr + plain.stderr
    assert streamed.stdout == plain.stdout == json.loads(js.stdout)["text"] + "\n"


@pytest.mark.parametrize("args, msg", [
    (["--file", "/nonexistent.py"], "file not found"),
    (["--offset", "9999"], "out of range"),
    (["--line", "99"], "out of range"),
    (["--model", "no-such-model"], "unknown model"),
    (["--temperature", "-1"], "temperature must be in 0..5"),
    (["--temperature", "0.5", "--top-p", "0"], "top_p must be in (0, 1]"),
    (["--penalty", "0.5"], "repetition_penalty must be in 1..3"),
])
def test_bad_input_one_line_exit_2(tiny_qwen, src, args, msg):
    base = {"--model": str(tiny_qwen), "--file": str(src)}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    r = run("complete", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("codeswift: error:") and msg in lines[0]


def test_corrupt_gguf_is_one_line_error(tmp_path, src):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    r = run("complete", "--model", str(bad), "--file", str(src))
    assert r.returncode == 2
    assert [l for l in r.stderr.splitlines() if l.startswith("codeswift: error:")] and "GGUF" in r.stderr


def test_sampled_completion_is_reproducible_with_a_seed(tiny_qwen, src):
    args = ("complete", "--model", str(tiny_qwen), "--file", str(src), "--max-tokens", "12", "--json",
            "--dtype", "float32", "--temperature", "0.9", "--seed", "5")
    a, b = run(*args), run(*args)
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["tokens"] == json.loads(b.stdout)["tokens"]
