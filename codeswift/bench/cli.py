"""`codeswift bench` argument parsing (light: the benchmark itself is imported on use)."""
from __future__ import annotations

from ..cli import add_engine_args

DESCRIPTION = ("Benchmark codeswift against plain greedy decoding (model.generate) and transformers' "
               "prompt lookup on the same model, prompts, max tokens and stop rules, in one run. Reports "
               "prefill and decode time, tokens/s, accepted tokens per step and identical-output rate; "
               "writes results.json and speedup.png; prints a summary line last.")


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark codeswift against plain greedy and prompt lookup",
                       description=DESCRIPTION)
    add_engine_args(p)
    p.add_argument("--tasks", required=True,
                   help="repo-dev style folder (tasks.jsonl + repos/), a tasks.jsonl, or HumanEval *.jsonl.gz")
    p.add_argument("--limit", type=int, help="number of tasks, spread evenly over the file")
    p.add_argument("--kinds", help="only these task kinds, comma-separated (line,function)")
    p.add_argument("--methods", default="ar,pld,codeswift",
                   help="comma-separated: ar (model.generate), pld (transformers prompt lookup), codeswift, "
                        "codeswift-ar (engine without drafts), ablations codeswift-repo, -corpus, -cache, "
                        "-context, -self (no self-drafts), -timing, -tree, -kv; llama.cpp (GGUF): llamacpp-ar, llamacpp-pld "
                        "(llama-cpp-python's prompt lookup), codeswift-llamacpp and its ablations "
                        "(codeswift-llamacpp-tree, ...); real llama-server peers (same GGUF, token-id prompts, "
                        "own process each; session mode uses its prompt cache): llama-server (plain), "
                        "llama-server-ngram-simple, llama-server-ngram-map-k, llama-server-ngram-mod (its --spec-type "
                        "modes, see --server-draft). Each family is compared with its own greedy run (default: "
                        "%(default)s; with --backend llamacpp: llamacpp-ar,llamacpp-pld,codeswift-llamacpp, plus the "
                        "four llama-server methods when a llama-server binary is built: codeswift setup llamacpp --server)")
    p.add_argument("--mode", choices=("cold", "session", "long", "load"), default="cold",
                   help="cold: each task once from scratch; session: simulate typing the gold span; long: "
                        "each distinct file of the tasks generated from its first --head-lines lines (use with "
                        "--max-tokens 2048; stop none), reported as tokens/step over the output, first-token "
                        "time, repetition (distinct-n) and peak memory; load: --editors simulated editors typing "
                        "sessions at once against --engines HTTP servers (throughput, latency and TTFT p50/p95, "
                        "identical outputs; --methods is not used)")
    p.add_argument("--editors", default="1,4,16,64",
                   help="load mode: editor counts to run, comma-separated (default: %(default)s)")
    p.add_argument("--engines", default="serve,vllm,vllm-ngram,vllm-codeswift",
                   help="load mode: serve (codeswift serve), vllm, vllm-ngram, vllm-codeswift (codeswift serve "
                        "--engine vllm --vllm-spec none|ngram|codeswift); one that cannot start is reported as "
                        "skipped (default: %(default)s)")
    p.add_argument("--stagger-ms", type=float, default=100.0,
                   help="load mode: editor i starts i times this after the first (default: %(default)s)")
    p.add_argument("--think-ms", type=float, default=0.0,
                   help="load mode: pause between an answer and the editor's next request (default: %(default)s)")
    p.add_argument("--vllm-spec-tokens", type=int, metavar="N",
                   help="load mode: draft tokens per step for vllm-ngram and vllm-codeswift (default: the server's)")
    p.add_argument("--vllm-python", metavar="PATH",
                   help="load mode: python of the vLLM environment for the vllm engines (default: the server's choice)")
    p.add_argument("--vllm-args", default="", metavar="FLAGS",
                   help="load mode: more `codeswift serve` flags for the vllm engines, one string "
                        "(e.g. \"--vllm-max-model-len 4096\")")
    p.add_argument("--head-lines", type=int, default=40, help="long mode: lines of the file in the prompt (default: %(default)s)")
    p.add_argument("--penalty", type=float, default=1.0,
                   help="contextual repetition penalty for codeswift's methods and their greedy references (1: off; "
                        "the peers cannot apply it, so only codeswift*, ar and llamacpp-ar run) (default: %(default)s)")
    p.add_argument("--penalty-window", type=int, default=0,
                   help="tokens of history the penalty looks at (0: all; transformers' ar only supports 0)")
    p.add_argument("--session-follow", choices=("gold", "model", "mix"), default="gold",
                   help="session mode: the developer types the gold span character by character (gold); "
                        "accepts the model's first suggestion word by word (model); or accepts each "
                        "suggestion's words while they match the gold and types the gold where it does not, "
                        "rejecting the rest (mix: the cache's misses are paid for) (default: %(default)s)")
    p.add_argument("--calibrate", type=int, default=0, metavar="N",
                   help="first let each codeswift engine learn draft acceptance on N other tasks (not measured), "
                        "as an engine in use for a while has; content caches are cleared after (default: 0)")
    p.add_argument("--gguf", help="GGUF file for the llama.cpp methods (default: from --model if it is a "
                                  "known name or a .gguf)")
    p.add_argument("--session-requests", type=int, default=6, help="requests per task in session mode")
    p.add_argument("--max-tokens", type=int, default=64, help="max new tokens (long mode: 2048)")
    p.add_argument("--stop", choices=("none", "line", "block"),
                   help="override the stop rule (default: line for line tasks, block for functions)")
    p.add_argument("--prefix-tokens", type=int, default=512, help="prompt budget for the prefix (default: %(default)s)")
    p.add_argument("--suffix-tokens", type=int, default=128, help="prompt budget for the suffix (default: %(default)s)")
    p.add_argument("--no-heal", action="store_true",
                   help="keep trailing whitespace at the cursor in the prompt (to measure what healing gives)")
    p.add_argument("--corpus", help="general corpus folder built by `codeswift corpus build`")
    p.add_argument("--no-repo", action="store_true", help="do not index the task repositories")
    p.add_argument("--server-draft", type=int, default=6, metavar="N",
                   help="max draft tokens for the llama-server ngram methods (llama.cpp's GPU defaults are "
                        "48-64; a CPU pays for every drafted token) (default: %(default)s)")
    p.add_argument("--server-lookup", type=int, default=3, metavar="N",
                   help="n-gram match length for the llama-server ngram methods (llama.cpp's defaults, 12 and "
                        "24, almost never match in a completion prompt; 0 keeps them) (default: %(default)s)")
    p.add_argument("--threads", type=int, help="CPU threads for torch and llama.cpp (default: their own choice)")
    p.add_argument("--out", default="bench-out", help="folder for results.json and speedup.png")
    p.set_defaults(func=_run)


def _run(args) -> int:
    if args.mode == "load":
        from .load import run_load        # HTTP servers in processes: no model in this one
        return 0 if run_load(args) else 1
    from .run import run_bench            # heavy (torch, transformers): only when benchmarking
    return 0 if run_bench(args) else 1
