"""Real `llama-server` peers for `codeswift bench`: build the binary, run it, talk to it.

Why a server and not only the Python binding: editors (llama.vscode, Continue, ...) talk to
llama-server over HTTP, and its speculative `--spec-type ngram-*` modes and prompt cache are what
users actually get. Benchmarking against it measures codeswift against the real thing.

The binary is built from the llama.cpp sources vendored in the llama-cpp-python sdist of the
*same* version as the binding (`LLAMA_CPP_PYTHON`), so the server, the binding and codeswift's
llama.cpp backend run the same llama.cpp and greedy outputs compare token for token. The build
uses the same per-CPU ISA flags as the binding (`native.cmake_args`, AMX off) so it cannot die
with SIGILL on a CPU it was not built for.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .native import LLAMA_CPP_PYTHON, cmake_args, cpu_info

SERVER_ENV = "CODESWIFT_LLAMA_SERVER"
BUILD_HINT = "build it with `codeswift setup llamacpp --server` (or set CODESWIFT_LLAMA_SERVER=/path/to/llama-server)"
SPEC_TYPES = ("ngram-simple", "ngram-map-k", "ngram-mod")

# Offline, server-only build: no web UI download (LLAMA_USE_PREBUILT_UI fetches it from a HF
# bucket at build time), no npm build, no OpenSSL (loopback HTTP only), static so the binary does
# not depend on the build tree's shared libs. LLAMA_CURL is deprecated in this version (a warning).
BASE_CMAKE = ["-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_UI=OFF",
              "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
              "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF", "-DBUILD_SHARED_LIBS=OFF",
              "-DCMAKE_BUILD_TYPE=Release"]


class ServerError(RuntimeError):
    """llama-server is missing, would not start, or answered a request with an error."""


def _cache_root() -> Path:
    from .models import cache_root
    return cache_root()


def server_build_dir(args: list[str]) -> Path:
    """One build folder per (llama-cpp-python version, CPU cmake flags): a machine image moved to
    another CPU class gets its own build instead of a binary that may not run there."""
    digest = hashlib.sha1(" ".join(args).encode()).hexdigest()[:10]
    return _cache_root() / "llama.cpp" / f"{LLAMA_CPP_PYTHON}-{digest}"


def _binary(build: Path) -> Path:
    return build / "bin" / "llama-server"


def fetch_sources(log=print) -> Path:
    """The llama.cpp tree vendored in the llama-cpp-python sdist (one copy shared with the
    converter and quantizer behind `models pull --quant`)."""
    from .errors import ModelLoadError
    from .native import vendored_sources
    try:
        return vendored_sources()
    except ModelLoadError as e:
        raise ServerError(str(e)) from e


def build_server(args: list[str] | None = None, src: Path | None = None, jobs: int | None = None,
                 log=print) -> Path:
    """Build `llama-server` for this CPU (or the given cmake flags) and return its path.

    Returns the existing binary without rebuilding. `src` is a llama.cpp tree to use instead of
    the downloaded sdist (development). Only the llama-server target is built (~5 min on 2 cores).
    """
    args = cmake_args(cpu_info()) if args is None else list(args)
    build = server_build_dir(args)
    binary = _binary(build)
    if binary.exists():
        return binary
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise ServerError(f"building llama-server needs `{tool}` on PATH (e.g. apt-get install cmake g++)")
    src = Path(src) if src is not None else fetch_sources(log)
    jobs = jobs or os.cpu_count() or 2
    steps = [["cmake", "-S", str(src), "-B", str(build), *BASE_CMAKE, *args],
             ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)]]
    build.mkdir(parents=True, exist_ok=True)
    logfile = build / "build.log"
    log(f"building llama-server ({LLAMA_CPP_PYTHON}) in {build} (log: {logfile})")
    with open(logfile, "a") as lf:
        for cmd in steps:
            lf.write("$ " + " ".join(cmd) + "\n")
            lf.flush()
            r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                tail = logfile.read_text(errors="replace")[-1500:]
                raise ServerError(f"llama-server build failed ({' '.join(cmd[:3])} ...):\n{tail}")
    if not binary.exists():
        raise ServerError(f"the build finished but {binary} is missing (see {logfile})")
    return binary


def find_server() -> Path | None:
    """The llama-server to use: $CODESWIFT_LLAMA_SERVER, else the build for this CPU, else None."""
    env = os.environ.get(SERVER_ENV)
    if env:
        p = Path(env).expanduser()
        return p if p.is_file() and os.access(p, os.X_OK) else None
    p = _binary(server_build_dir(cmake_args(cpu_info())))
    return p if p.exists() else None


# -- running it ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sse_events(resp):
    """JSON payloads of a llama-server SSE stream (`data: {...}`; `error: {...}` raises)."""
    for line in resp.iter_lines():
        if not line:
            continue
        field, _, payload = line.partition(":")
        payload = payload.strip()
        if field == "error" or (field == "data" and payload.startswith('{"error"')):
            raise ServerError(f"llama-server error: {_error_text(payload)}")
        if field == "data" and payload and payload != "[DONE]":
            yield json.loads(payload)


def _die_with_parent() -> None:
    """Child-side (Linux): SIGTERM the server when the process that started it dies, so a
    killed benchmark leaves no server behind."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)          # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _error_text(body: str) -> str:
    try:
        err = json.loads(body)
        err = err.get("error", err)
        return err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except ValueError:
        return body.strip()[:500]


class LlamaServer:
    """A llama-server child process on loopback, one slot, for one GGUF (a context manager).

    spec_type None is plain decoding; "ngram-simple", "ngram-map-k" or "ngram-mod" turn on
    llama-server's own model-free speculative decoding with drafts of up to `draft` tokens.
    llama.cpp's defaults (48-64 draft tokens) are sized for GPUs, where verifying 64 tokens
    costs about as much as one; on a CPU verification cost grows with the draft, so 6.

    Context settings match codeswift's LlamaCppBackend (flash attention off, batch = ubatch =
    512, n_ctx 4096) so the plain server's greedy tokens equal the binding's token for token.
    """

    def __init__(self, gguf: str | Path, threads: int | None = None, spec_type: str | None = None,
                 draft: int = 6, lookup: int | None = None, n_ctx: int = 4096, binary: str | Path | None = None,
                 extra_args: list[str] | None = None, startup_timeout: float = 120.0,
                 cache_ram_mib: int | None = None):
        if spec_type is not None and spec_type not in SPEC_TYPES:
            raise ValueError(f"unknown spec_type {spec_type!r}; known: {', '.join(SPEC_TYPES)}")
        binary = Path(binary) if binary else find_server()
        if binary is None or not Path(binary).exists():
            raise ServerError(f"llama-server binary not found ({binary or 'no build for this CPU'}); {BUILD_HINT}")
        if not Path(gguf).is_file():
            raise ServerError(f"GGUF file not found: {gguf}")
        self.binary, self.gguf, self.spec_type, self.draft = Path(binary), Path(gguf), spec_type, draft
        self.lookup = lookup                        # n-gram key length; None: llama.cpp's 12 / 12 / 24
        self.threads = threads or os.cpu_count() or 1
        self.n_ctx, self.extra_args, self.startup_timeout = n_ctx, list(extra_args or []), startup_timeout
        self.cache_ram_mib = cache_ram_mib          # None: llama-server's default host prompt cache
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._slots: Path | None = None             # a private folder, made in start()
        self._log = None
        self._http = None

    # -- lifecycle
    def command(self) -> list[str]:
        cmd = [str(self.binary), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
               "-t", str(self.threads), "-tb", str(self.threads), "-c", str(self.n_ctx), "-np", "1",
               "-b", "512", "-ub", "512", "-fa", "off", "--no-webui",
               "--slot-save-path", str(self._slots or "slots")]   # only so that reset() may erase
        if self.cache_ram_mib is not None:
            cmd += ["--cache-ram", str(self.cache_ram_mib)]
        if self.spec_type:
            n = str(self.draft)
            cmd += ["--spec-type", self.spec_type, "--spec-draft-n-max", n, "--spec-draft-n-min", "0"]
            cmd += {"ngram-simple": ["--spec-ngram-simple-size-m", n],
                    "ngram-map-k": ["--spec-ngram-map-k-size-m", n],
                    "ngram-mod": ["--spec-ngram-mod-n-max", n, "--spec-ngram-mod-n-min", "1"]}[self.spec_type]
            if self.lookup:
                cmd += [{"ngram-simple": "--spec-ngram-simple-size-n", "ngram-map-k": "--spec-ngram-map-k-size-n",
                         "ngram-mod": "--spec-ngram-mod-n-match"}[self.spec_type], str(self.lookup)]
        return cmd + self.extra_args

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LlamaServer":
        import httpx
        self.port = _free_port()
        self._slots = Path(tempfile.mkdtemp(prefix="llama-server-slots-"))
        self._log = tempfile.NamedTemporaryFile("w+b", prefix="llama-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        atexit.register(self.stop)
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(600.0, connect=5.0),
                                  trust_env=False)           # loopback: never through an HTTP(S)_PROXY
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"llama-server exited with code {self.proc.returncode} at start:\n{tail}")
            try:
                r = self._http.get("/health", timeout=2.0)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"llama-server did not become healthy in {self.startup_timeout:.0f} s:\n{tail}")
            time.sleep(0.1)

    def log_tail(self, n: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None
        if self._slots is not None:
            shutil.rmtree(self._slots, ignore_errors=True)
            self._slots = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _check_alive(self) -> None:
        if self.proc is None or self._http is None:
            raise ServerError("llama-server is not running (use it as a context manager or call start())")
        if self.proc.poll() is not None:
            raise ServerError(f"llama-server died (exit code {self.proc.returncode}):\n{self.log_tail()}")

    def reset(self) -> None:
        """Forget the slot's cached prompt (POST /slots/0?action=erase), e.g. between tasks."""
        self._check_alive()
        r = self._http.post("/slots/0", params={"action": "erase"})
        if r.status_code != 200:
            raise ServerError(f"llama-server slot erase answered {r.status_code}: {_error_text(r.text)}")

    # -- requests
    @staticmethod
    def _greedy() -> dict:
        # Only top_k=1 in the chain (then llama.cpp's final dist pick of the single candidate):
        # exactly argmax, with no penalties, DRY or min-p that the default chain would apply.
        return {"temperature": 0.0, "top_k": 1, "samplers": ["top_k"], "n_probs": 0}

    def complete(self, prompt_tokens: list[int], max_new: int, eos_ids: set[int], stop=None,
                 cache_prompt: bool = True) -> dict:
        """Greedy completion of a token-id prompt over the streaming `/completion` endpoint.

        Tokens are cut client-side by the same rule as `run_llamacpp_ar` (EOS, max tokens, the
        stop check; `loop.finalize`), closing the stream as soon as it fires. Wall clock is the
        primary timing; llama-server's own `timings` (requested with every chunk) are those of
        the last chunk read, so a cut stream reports the server's figures up to the cut.

        llama-server does not stream a token whose text ends in an incomplete UTF-8 sequence (a
        multi-byte character split over tokens): its id never appears in the stream, only the
        count (`tokens_predicted`) moves on. When that count says ids are missing, the exact ids
        come from the same request again without streaming (untimed; `stream_gap` is set).
        """
        from .loop import finalize, stopped
        self._check_alive()
        body = {"prompt": [int(t) for t in prompt_tokens], "n_predict": int(max_new), "stream": True,
                "return_tokens": True, "cache_prompt": bool(cache_prompt), "timings_per_token": True,
                **self._greedy()}
        out: list[int] = []
        timings, stop_type, cut, decoded = None, None, False, 0
        t0 = time.perf_counter()
        t1 = None
        with self._http.stream("POST", "/completion", json=body) as resp:
            if resp.status_code != 200:
                raise ServerError(f"llama-server /completion answered {resp.status_code}: "
                                  f"{_error_text(resp.read().decode(errors='replace'))}")
            for ev in _sse_events(resp):
                toks = ev.get("tokens") or []
                if toks and t1 is None:
                    t1 = time.perf_counter()
                out += [int(t) for t in toks]
                decoded = max(decoded, int(ev.get("tokens_predicted") or 0))
                timings = ev.get("timings") or timings
                if ev.get("stop"):
                    stop_type = ev.get("stop_type")
                    break
                # max_new is the server's own n_predict: read on to its final chunk
                if out and len(out) < max_new and stopped(out, max_new, eos_ids, stop):
                    cut = True
                    break
        t2 = time.perf_counter()
        t1 = t1 or t2
        gap = decoded > len(out)
        if gap:
            out = self._tokens_unstreamed(body)
        tokens, _ = finalize(out, max_new, eos_ids, stop)
        tm = timings or {}
        return {"tokens": tokens, "prefill_ms": (t1 - t0) * 1000, "decode_ms": (t2 - t1) * 1000,
                "server_prompt_n": tm.get("prompt_n"), "server_cache_n": tm.get("cache_n"),
                "server_prompt_ms": tm.get("prompt_ms"), "server_predicted_ms": tm.get("predicted_ms"),
                "server_predicted_n": tm.get("predicted_n"), "server_stop_type": "client" if cut else stop_type,
                "draft_n": tm.get("draft_n", 0 if tm else None),
                "draft_n_accepted": tm.get("draft_n_accepted", 0 if tm else None), "stream_gap": gap}

    def _tokens_unstreamed(self, body: dict) -> list[int]:
        r = self._http.post("/completion", json={**body, "stream": False})
        if r.status_code != 200:
            raise ServerError(f"llama-server /completion answered {r.status_code}: {_error_text(r.text)}")
        return [int(t) for t in r.json().get("tokens", [])]

    def infill(self, input_prefix: str, input_suffix: str, input_extra: list[dict] | None = None,
               max_new: int = 64, cache_prompt: bool = True, **options) -> dict:
        """`/infill` as llama.vscode drives it (prefix, suffix, `input_extra` [{filename, text}]
        chunks; llama-server builds the FIM prompt), greedy. Returns text, tokens and timings."""
        self._check_alive()
        body = {"input_prefix": input_prefix, "input_suffix": input_suffix, "input_extra": input_extra or [],
                "n_predict": int(max_new), "stream": False, "return_tokens": True,
                "cache_prompt": bool(cache_prompt), **self._greedy(), **options}
        t0 = time.perf_counter()
        r = self._http.post("/infill", json=body)
        wall = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise ServerError(f"llama-server /infill answered {r.status_code}: {_error_text(r.text)}")
        data = r.json()
        return {"text": data.get("content", ""), "tokens": data.get("tokens", []), "wall_ms": wall,
                "stop_type": data.get("stop_type"), "timings": data.get("timings", {})}


if __name__ == "__main__":                                   # python -m codeswift.llama_server [src]
    print(build_server(src=Path(sys.argv[1]) if len(sys.argv) > 1 else None))
