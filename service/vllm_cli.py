"""`codeswift serve --engine vllm`: its options, where vLLM runs, and the server loop.

vLLM lives in its own environment (`codeswift setup vllm`). When this python cannot import it,
`serve` re-executes itself with the environment's python and the same arguments; so it does when
that environment has Intel OpenMP and LD_PRELOAD lacks it (vLLM's CPU worker wants it preloaded).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys

from codeswift.errors import CodeswiftError

REEXEC_ENV = "CODESWIFT_VLLM_REEXEC"
SPECS = ("none", "ngram", "suffix", "codeswift")


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("codeswift", "vllm"), default="codeswift",
                   help="codeswift: one sequence at a time with codeswift's own speculative loop (default); "
                        "vllm: vLLM's async engine (continuous batching, paged KV, prefix caching), "
                        "same routes; run `codeswift setup vllm` once")
    p.add_argument("--vllm-spec", choices=SPECS, default="codeswift",
                   help="with --engine vllm: speculative decoding by codeswift's drafter as vLLM's proposer "
                        "(default), vLLM's own ngram or suffix (needs arctic-inference), or none")
    p.add_argument("--vllm-spec-tokens", type=int, default=4, metavar="N",
                   help="draft tokens per step with --vllm-spec (default: %(default)s)")
    p.add_argument("--vllm-python", metavar="PATH",
                   help="python of the vLLM environment (default: this python if it imports vllm, else the "
                        "one `codeswift setup vllm` recorded)")
    p.add_argument("--vllm-max-model-len", type=int, default=8192, metavar="N",
                   help="context length vLLM serves (prompt + output, default: %(default)s)")
    p.add_argument("--vllm-max-seqs", type=int, default=16, metavar="N",
                   help="sequences vLLM batches at once (default: %(default)s)")
    p.add_argument("--vllm-eager", action="store_true",
                   help="run the model without torch.compile (starts sooner, may decode slower)")


def check_args(args: argparse.Namespace) -> None:
    if getattr(args, "engine", "codeswift") != "vllm":
        return
    if not 1 <= args.vllm_spec_tokens <= 64:
        raise CodeswiftError("--vllm-spec-tokens must be in 1..64")
    if not 256 <= args.vllm_max_model_len <= 1 << 20:
        raise CodeswiftError("--vllm-max-model-len must be in 256..1048576")
    if not 1 <= args.vllm_max_seqs <= 1024:
        raise CodeswiftError("--vllm-max-seqs must be in 1..1024")
    if args.vllm_python is not None and not (os.path.isfile(args.vllm_python) and os.access(args.vllm_python, os.X_OK)):
        raise CodeswiftError(f"--vllm-python {args.vllm_python} is not an executable file")
    if args.backend not in ("auto",):
        raise CodeswiftError("--backend does not apply to --engine vllm (vLLM runs the model)")


def _importable(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def target_python(args: argparse.Namespace, here_has_vllm: bool | None = None,
                  recorded: str | None = None) -> str:
    """The python that should run vLLM: --vllm-python, else this one if it imports vllm, else the
    environment `codeswift setup vllm` recorded."""
    if args.vllm_python:
        return args.vllm_python
    if here_has_vllm is None:
        here_has_vllm = _importable("vllm")
    if here_has_vllm:
        return sys.executable
    if recorded is None:
        from codeswift.vllm.setup import recorded_python
        recorded = recorded_python()
    if recorded is None:
        raise CodeswiftError("vLLM is not installed in this python and no vLLM environment is recorded: run "
                             "`codeswift setup vllm` (or give --vllm-python PATH)")
    return recorded


def reexec_plan(args: argparse.Namespace, argv: list[str], env: dict | None = None,
                here_has_vllm: bool | None = None, recorded: str | None = None) -> tuple[list[str], dict] | None:
    """(command, environment) to re-execute `codeswift <argv>` with, or None to serve here.

    Re-executes when the target python is another one, or when LD_PRELOAD lacks the Intel
    OpenMP of the target's environment. Never twice (REEXEC_ENV marks the child)."""
    from codeswift.vllm.setup import vllm_environment
    env = dict(os.environ if env is None else env)
    py = target_python(args, here_has_vllm, recorded)
    same = os.path.realpath(py) == os.path.realpath(sys.executable) or py == sys.executable
    new_env = vllm_environment(py, env)
    if env.get(REEXEC_ENV):
        if not same:
            raise CodeswiftError(f"re-executed with {sys.executable} but vLLM should run in {py}: "
                                 "check --vllm-python and `codeswift setup vllm`")
        return None
    if same and new_env.get("LD_PRELOAD", "") == env.get("LD_PRELOAD", ""):
        return None
    new_env[REEXEC_ENV] = "1"
    return [py, "-m", "codeswift.cli", *argv], new_env


def reexec(args: argparse.Namespace, argv: list[str]) -> None:
    """Replace this process per `reexec_plan` (returns only when serving here)."""
    plan = reexec_plan(args, argv)
    if plan is None:
        if not _importable("vllm"):
            raise CodeswiftError(f"vLLM is not importable in {sys.executable}: run `codeswift setup vllm`")
        return
    cmd, env = plan
    print(f"codeswift serve: running vLLM in {cmd[0]}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    try:
        os.execve(cmd[0], cmd, env)
    except OSError as e:
        raise CodeswiftError(f"cannot run {cmd[0]}: {e.strerror or e}")


def settings_from_args(args: argparse.Namespace):
    from .vllm_engine import VllmSettings
    return VllmSettings(model=args.model, dtype=args.dtype, spec=args.vllm_spec, spec_tokens=args.vllm_spec_tokens,
                        max_model_len=args.vllm_max_model_len, max_num_seqs=args.vllm_max_seqs,
                        repo_root=getattr(args, "repo", None), enforce_eager=args.vllm_eager)


def serve(args: argparse.Namespace, sock: socket.socket, config) -> int:
    """Start vLLM inside the serving event loop, then serve the app on `sock`."""
    import asyncio

    from .app import create_app, http_server
    from .vllm_engine import VllmEngine

    async def main() -> None:
        engine = await VllmEngine.load(settings_from_args(args))
        server = http_server(create_app(engine, config), sock, args.log_level, f"engine {engine.info.backend}")
        try:
            await server.serve(sockets=[sock])
        finally:
            engine.close()
    asyncio.run(main())
    return 0
