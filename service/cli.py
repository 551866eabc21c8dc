"""`codeswift serve`: load the engine once and serve it over HTTP (uvicorn)."""
from __future__ import annotations

import argparse
import os
import socket
import sys

from codeswift.cli import add_corpus_arg, add_engine_args, engine_config_from_args
from codeswift.errors import CodeswiftError
from codeswift.types import MAX_TOKENS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve completions over HTTP (native, llama.cpp /infill, OpenAI /v1/completions)",
        description="Load the model once and serve it: POST /v1/codeswift/complete, /infill (llama.cpp), "
                    "/v1/completions (OpenAI), /v1/codeswift/repos; GET /health, /metrics. "
                    "Binds 127.0.0.1 by default; any other address needs --token.")
    add_engine_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s; 0 = any free port)")
    p.add_argument("--token", default=os.environ.get("CODESWIFT_TOKEN") or None,
                   help="bearer token required on every endpoint but /health (default: $CODESWIFT_TOKEN; "
                        "prefer the variable: a flag is visible in the process list)")
    p.add_argument("--root", action="append", default=[], metavar="DIR",
                   help="folder under which clients may register repositories (repeatable)")
    p.add_argument("--queue-size", type=int, default=16,
                   help="completions that may wait for the engine; more get HTTP 429 (default: %(default)s)")
    p.add_argument("--max-body-mb", type=float, default=2.0,
                   help="largest request body in MiB; larger gets HTTP 413 (default: %(default)s)")
    p.add_argument("--rate-limit", type=int, default=0, metavar="N",
                   help="requests a minute per client address (every endpoint but /health); more get "
                        "HTTP 429 with Retry-After (default: 0 = no limit)")
    p.add_argument("--max-tokens", type=int, default=64,
                   help="tokens generated when a request does not say (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    add_corpus_arg(p)
    from .vllm_cli import add_args as add_vllm_args
    add_vllm_args(p)
    p.set_defaults(func=_cmd_serve)


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad or unsafe settings before anything slow happens (exit 2, one line)."""
    from .guard import is_loopback_host
    if not is_loopback_host(args.host) and not args.token:
        raise CodeswiftError(f"refusing to bind {args.host} without --token (or $CODESWIFT_TOKEN): "
                             "only loopback addresses may be served without authentication")
    if not 0 <= args.port <= 65535:
        raise CodeswiftError(f"--port {args.port} out of range 0..65535")
    if args.queue_size < 0:
        raise CodeswiftError("--queue-size must be >= 0")
    if not 1 <= args.max_tokens <= MAX_TOKENS:
        raise CodeswiftError(f"--max-tokens must be in 1..{MAX_TOKENS}")
    if args.max_body_mb <= 0:
        raise CodeswiftError("--max-body-mb must be > 0")
    if args.rate_limit < 0:
        raise CodeswiftError("--rate-limit must be >= 0 (0 = no limit)")
    for root in args.root:
        if not os.path.isdir(root):
            raise CodeswiftError(f"--root {root} is not a folder")
    from .vllm_cli import check_args as check_vllm_args
    check_vllm_args(args)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket, bound now so that a busy port fails before the model loads."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise CodeswiftError(f"cannot bind {host}:{port}: {e.strerror or e}")
    return sock


def _cmd_serve(args: argparse.Namespace) -> int:
    check_args(args)
    if getattr(args, "engine", "codeswift") == "vllm":
        from . import vllm_cli
        vllm_cli.reexec(args, sys.argv[1:])          # returns only where vLLM runs in this python
    sock = bind(args.host, args.port)

    from .app import ServiceConfig, create_app, http_server
    config = ServiceConfig(token=args.token, roots=tuple(args.root), queue_size=args.queue_size,
                           max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                           default_max_tokens=args.max_tokens, rate_limit=args.rate_limit)
    if getattr(args, "engine", "codeswift") == "vllm":
        return vllm_cli.serve(args, sock, config)

    from codeswift.engine import Engine
    from codeswift.std_corpus import build_in_background, parse_setting
    from codeswift.worker import Worker
    corpus = parse_setting(args.corpus)
    worker = Worker("codeswift-engine")      # loads the model and runs it: one thread (see worker.py)
    engine = worker.call(Engine.load, engine_config_from_args(args, max_tokens=args.max_tokens,
                                                              corpus_dir=corpus))
    if corpus == "auto":
        build_in_background(engine, log=lambda line: print(line, file=sys.stderr, flush=True))
    http_server(create_app(engine, config, worker), sock, args.log_level).run(sockets=[sock])
    return 0
