"""The engines of `codeswift bench --mode load`: each a `codeswift serve` process on a free
loopback port, waited for on GET /health, its output in a log file, stopped with its process group."""
from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# engine name -> `codeswift serve` flags on top of the bench's model flags
ENGINES: dict[str, tuple[str, ...]] = {
    "serve": (),
    "vllm": ("--engine", "vllm", "--vllm-spec", "none"),
    "vllm-ngram": ("--engine", "vllm", "--vllm-spec", "ngram"),
    "vllm-codeswift": ("--engine", "vllm", "--vllm-spec", "codeswift"),
}
START_TIMEOUT_S = 1200.0            # model load (+ vLLM's own start-up) on a busy CPU
_EXCEPTION = re.compile(r"^([\w.]+\.)?\w*(Error|Exception)\b:?")   # "ValueError: ...", "x.y.ValidationError: ..."


class EngineStartError(Exception):
    """The engine's server did not come up (the message says why)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EngineProcess:
    """`codeswift serve` for one engine, on a free loopback port, its output in a log file."""

    def __init__(self, name: str, args: argparse.Namespace, max_editors: int, log_dir: Path):
        self.name, self.args, self.max_editors = name, args, max_editors
        self.log_path = log_dir / f"engine-{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.health: dict = {}

    def command(self, port: int) -> list[str]:
        a = self.args
        vllm = self.name.startswith("vllm")
        cmd = [sys.executable, "-m", "codeswift.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", a.model, "--device", a.device, "--dtype", a.dtype,
               *(() if vllm else ("--backend", a.backend)),             # vLLM runs the model itself
               # the corpus the bench names (none by default): no background build during the run
               "--corpus", getattr(a, "corpus", None) or "off",
               "--queue-size", str(max(16, 2 * self.max_editors)), "--max-tokens", str(a.max_tokens),
               "--log-level", "warning", *ENGINES[self.name]]
        if vllm:
            cmd += ["--vllm-max-seqs", str(max(16, self.max_editors))]    # every editor in the batch
            if getattr(a, "vllm_python", None):
                cmd += ["--vllm-python", a.vllm_python]
            cmd += shlex.split(getattr(a, "vllm_args", "") or "")
            if self.name != "vllm" and getattr(a, "vllm_spec_tokens", None):
                cmd += ["--vllm-spec-tokens", str(a.vllm_spec_tokens)]
        return cmd

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "EngineProcess":
        """Start and wait for GET /health; EngineStartError with the server's own last words."""
        import httpx
        env = dict(os.environ)
        if getattr(self.args, "threads", None):
            env["OMP_NUM_THREADS"] = str(self.args.threads)
        for attempt in range(2):                      # a port taken between probe and bind: once more
            self.port = free_port()
            log = open(self.log_path, "w")
            try:
                self.proc = subprocess.Popen(self.command(self.port), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            finally:
                log.close()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    r = httpx.get(self.url + "/health", timeout=2)
                    if r.status_code == 200:
                        self.health = r.json()
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            else:
                self.stop()
                raise EngineStartError(f"no answer on /health within {timeout_s:.0f} s ({self.log_path})")
            reason = self.last_words()
            if attempt == 0 and "cannot bind" in reason:
                continue
            raise EngineStartError(f"exited with status {self.proc.returncode}: {reason}")
        raise EngineStartError("could not bind a free port")

    def last_words(self) -> str:
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no output"
        if not lines:
            return "no output"
        said = [ln for ln in lines if ln.startswith("codeswift: error")]
        if said:
            return said[-1][:400]
        raised = [i for i, ln in enumerate(lines) if _EXCEPTION.match(ln)]
        if not raised:
            return lines[-1][:400]
        i = raised[-1]                 # the exception, and its detail line where one follows (pydantic)
        detail = lines[i + 1] if i + 1 < len(lines) and not lines[i + 1].startswith("For further") else ""
        return f"{lines[i]} {detail}".strip()[:400]

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGTERM, then SIGKILL, to the process group
        this server was started in (a vLLM engine's own workers included)."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


