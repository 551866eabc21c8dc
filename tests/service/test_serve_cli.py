"""`codeswift serve` as a real process: loads the model once, answers with the engine's text."""
import os
import queue
import re
import signal
import subprocess
import sys
import threading

import httpx

from svc_testkit import CODE


def test_serve_process_end_to_end(tiny_qwen, expected, tmp_path):
    env = {**os.environ, "CODESWIFT_TOKEN": "tok-e2e"}          # the token from the environment
    proc = subprocess.Popen(
        [sys.executable, "-m", "codeswift.cli", "serve", "--model", str(tiny_qwen), "--dtype", "float32",
         "--port", "0", "--root", str(tmp_path), "--max-tokens", "12", "--log-level", "warning"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stderr], daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=90)
            m = re.match(r"codeswift serve: (http://127\.0\.0\.1:\d+) \(model qwen2, token required\)", line)
            url = m and m.group(1)
        auth = {"Authorization": "Bearer tok-e2e"}
        assert httpx.get(url + "/health").status_code == 200
        assert httpx.post(url + "/infill", json={"input_prefix": "x"}).status_code == 401
        r = httpx.post(url + "/infill", json={"input_prefix": CODE[:64], "input_suffix": CODE[64:]},
                       headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["content"] == expected(prefix=CODE[:64], suffix=CODE[64:], max_tokens=12).text
        (tmp_path / "repo").mkdir()
        r = httpx.post(url + "/v1/codeswift/repos", json={"path": str(tmp_path / "repo")}, headers=auth)
        assert r.status_code == 200 and len(r.json()["repo_id"]) == 16
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode in (0, 130)
