"""`codeswift lsp`: the language server over stdio (default) or TCP."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from codeswift.cli import add_engine_args
from codeswift.errors import CodeswiftError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lsp", help="run the language server (inline completion, completion) for any editor",
        description="Language server over stdio (default) or TCP. The editor's initializationOptions "
                    "(docs/protocol.md) override the defaults given here.")
    add_engine_args(p)
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    p.add_argument("--max-tokens", type=int, default=64, help="default maxTokens (default: %(default)s)")
    p.add_argument("--debounce-ms", type=int, default=75, help="default debounceMs (default: %(default)s)")
    p.add_argument("--no-index", action="store_true", help="default index=false: no repository index")
    p.add_argument("--no-warmup", action="store_true",
                   help="default warmup=false: no prompt prefill while the editor is idle")
    p.add_argument("--server-url", help="default serverUrl: complete with a `codeswift serve` instance")
    p.add_argument("--corpus", default=os.environ.get("CODESWIFT_CORPUS", "auto"), metavar="auto|off|DIR",
                   help="default corpus: auto builds this Python's stdlib and site-packages (the workspace's "
                        "venv first) into a general corpus in the background on first use; off; or a folder "
                        "from `codeswift corpus build` (default: $CODESWIFT_CORPUS or auto)")
    p.add_argument("--corpus-max-mb", type=int, default=24,
                   help="default corpusMaxMb: size cap of the automatic corpus in MiB of source (default: %(default)s)")
    p.add_argument("--log-file", help="write the log here instead of stderr")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=_cmd_lsp)


def defaults_from_args(args: argparse.Namespace):
    """Command-line flags as the server's default Options (checked like initializationOptions)."""
    from .options import Options, parse_options
    raw = {"model": args.model, "device": args.device, "dtype": args.dtype, "backend": args.backend,
           "maxTokens": args.max_tokens,
           "debounceMs": args.debounce_ms, "index": not args.no_index, "serverUrl": args.server_url,
           "warmup": not args.no_warmup, "corpus": args.corpus, "corpusMaxMb": args.corpus_max_mb}
    options, warnings = parse_options(raw, Options())
    if warnings:
        raise CodeswiftError("; ".join(w.replace("initializationOptions.", "option ") for w in warnings))
    return options


def parse_tcp(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CodeswiftError(f"--tcp expects HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _cmd_lsp(args: argparse.Namespace) -> int:
    defaults = defaults_from_args(args)
    tcp = parse_tcp(args.tcp) if args.tcp else None
    _setup_logging(args.log_level, args.log_file)
    from .server import SERVER
    SERVER.defaults = defaults
    if tcp:
        SERVER.start_tcp(*tcp)
        return 0
    SERVER.start_io(sys.stdin.buffer, _private_stdout())
    return 0


def _private_stdout():
    """The protocol's own copy of stdout; file descriptor 1 then points at stderr.

    Anything else that writes to stdout (a print, a progress bar, native code) would corrupt the
    protocol stream, and llama-cpp-python even points fd 1 at /dev/null while it loads a model,
    which silently swallowed replies sent meanwhile. A private descriptor is immune to both.
    """
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return out


def _setup_logging(level: str, path: str | None) -> None:
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pygls logs every message body (httpx every request) at INFO; keep that for --log-level debug.
    for noisy in ("pygls", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
