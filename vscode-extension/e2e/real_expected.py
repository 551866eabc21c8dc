"""The workspace and the expected ghost texts for the `real` scenario of scripts/vscode-e2e.sh.

Usage: python real_expected.py CODESWIFT MODEL WORKSPACE OUT.json

Writes WORKSPACE/textwrap.py — the standard library's textwrap.py with the body of `indent()`
removed (its docstring kept) — plus two more standard modules, so the extension indexes a small
real repository. Then plans what drive.cjs types and computes what VS Code must show, with
`codeswift complete --no-speculation` (plain greedy decoding, same model and backend choice as
the extension's server) on the document exactly as it will be in the editor at each cursor:

  1. End of the docstring's closing line, Enter (VS Code keeps the 4-space indent), type
     "if ": a single-line completion; accepted with Tab.
  2. Enter (VS Code's Python onEnterRules indent after `if ...:`): a block-mode completion (it may
     span lines; Qwen2.5-Coder-0.5B writes the one statement of the `if` body);
     Ctrl+Right (Accept Next Word) inserts only its first word.

The language server decides single- or multi-line with lsp.context.decide_stop and post-processes
the model's text with codeswift.ending.postprocess (cut the block, drop a repeat of the text
after the cursor, trailing whitespace); the CLI gets the same stop mode (`--stop`) and its text
the same post-processing, so the expected ghost text is exactly what the server must send.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from codeswift.ending import postprocess
from lsp.context import decide_stop

MAX_TOKENS = 64                       # codeswift.maxTokens, the extension's default
# Typed at the start of indent()'s body. A whole word: in the middle of one ("if pr") Qwen2.5-Coder
# takes the typed part for a whole token and writes "if pr is None:" (the prompt does not heal it).
TYPED = "if "
# VS Code's Python language configuration (extensions/python/language-configuration.json).
ON_ENTER_INDENT = re.compile(r"^\s*(?:def|class|for|if|elif|else|while|try|with|finally|except|async).*?:\s*$")
# VS Code's default word definition (Python's configuration has none of its own).
WORD = re.compile(r"(-?\d*\.\d\w*)|([^`~!@#$%^&*()\-=+\[{\]}\\|;:'\",.<>/?\s]+)")


def accept_next_word(text: str) -> str:
    """What editor.action.inlineSuggest.acceptNextWord inserts of `text` (VS Code 1.100's rule):
    the word it starts with, else what comes before the next word, but no further than the
    end of the first run of whitespace."""
    m = WORD.search(text)
    end = len(text) if m is None else (len(m.group(0)) if m.start() == 0 else m.start())
    ws = re.search(r"\s+", text)
    if ws is not None and ws.end() < end:
        end = ws.end()
    return text[:end]


def enter(text: str, offset: int) -> str:
    """What pressing Enter at `offset` inserts in VS Code: a line break and the indentation."""
    line = text[:offset].rpartition("\n")[2]
    indent = line[:len(line) - len(line.lstrip())]
    return "\n" + indent + ("    " if ON_ENTER_INDENT.match(line) else "")


def greedy(codeswift: str, model: str, text: str, offset: int, tmp: Path) -> dict:
    """`codeswift complete` at `offset` of `text`, with the server's stop mode and post-processing."""
    prefix, suffix = text[:offset], text[offset:]
    mode = decide_stop(prefix, suffix, "python")
    path = tmp / f"at-{offset}.py"
    path.write_text(text, encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.run([codeswift, "complete", "--file", str(path), "--offset", str(offset), "--stop", mode,
                           "--max-tokens", str(MAX_TOKENS), "--model", model, "--no-speculation", "--json"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"codeswift complete failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    ghost = postprocess(res["text"], prefix, suffix, mode, "python")
    if not ghost:
        sys.exit(f"the model suggests nothing at offset {offset} (raw {res['text']!r}); pick another cursor")
    return {"mode": mode, "raw": res["text"], "ghost": ghost, "tokens": res["tokens"],
            "cli_seconds": round(time.perf_counter() - t0, 1)}


# Quantized weights and other batch shapes (the server verifies trees and reuses the KV of the last
# keystroke; the CLI decodes one token at a time from a cold prompt) move logits by ~1e-3: where the
# model's top two choices are closer than this, either is its greedy text (README: near-ties).
NEAR_TIE = 0.05


def near_tie_alternatives(engine, text: str, offset: int, mode: str, tokens: list[int]) -> list[dict]:
    """The ghost text the model writes if it takes the runner-up at the first near tie along its
    greedy `tokens` (logits of the whole chain in one forward pass), with that tie's place and gap."""
    from codeswift.ending import make_stop
    from codeswift.loop import generate, restrict_root
    from codeswift.tree import chain_tree
    from codeswift.types import CompletionRequest
    prefix, suffix = text[:offset], text[offset:]
    req = CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=MAX_TOKENS, stop=mode, language="python")
    prompt = engine.prompts.build(req)
    line, healed = engine.prompts.cursor_line(prefix)
    first = engine.prompts.first_tokens(healed)
    be = engine.backend
    be.prefill(prompt[:-1], None, logits=False)
    t = chain_tree(prompt[-1], tokens)
    logits = restrict_root(be.verify_logits(t.tokens, t.parents, t.depth), first)   # as the server's rule
    for i in range(len(tokens)):
        top = logits[i].topk(2)
        gap = float(top.values[0] - top.values[1])
        if gap >= NEAR_TIE:
            continue
        other = int(top.indices[1]) if int(top.indices[0]) == tokens[i] else int(top.indices[0])
        head = tokens[:i] + [other]
        stop = make_stop(engine.tokenizer, mode, line)
        rest, _, _ = generate(be, prompt + head, MAX_TOKENS - len(head), engine.prompts.stop_ids,
                              stop=lambda out: (None if (n := stop(head + out)) is None else max(n - len(head), 0)))
        raw = engine.text_of(head + rest, req)
        return [{"ghost": postprocess(raw, prefix, suffix, mode, "python"), "token": i, "gap": round(gap, 4)}]
    return []


def position(text: str, offset: int) -> dict:
    """VS Code's status bar position (1-based line and column) of `offset`."""
    head = text[:offset]
    return {"line": head.count("\n") + 1, "col": len(head.rpartition("\n")[2]) + 1}


def main() -> None:
    codeswift, model, workspace, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    stdlib = Path(textwrap.__file__).parent
    source = (stdlib / "textwrap.py").read_text(encoding="utf-8")
    start = source.index("def indent(")
    body = source.index('    """\n', start) + len('    """\n')          # end of indent's docstring
    end = source.index('\n\nif __name__ == "__main__":', body)
    doc = source[:body] + source[end:]
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "textwrap.py").write_text(doc, encoding="utf-8")
    for name in ("shlex.py", "string.py"):
        shutil.copy(stdlib / name, workspace / name)
    tmp = out.parent
    line = doc[:body].count("\n")                     # 1-based number of the docstring's last line

    # 1. End, Enter, "if " -> single line; Tab.
    at = body - 1
    typed1 = enter(doc, at) + TYPED
    doc1 = doc[:at] + typed1 + doc[at:]
    at1 = at + len(typed1)
    step1 = greedy(codeswift, model, doc1, at1, tmp)
    after1 = doc1[:at1] + step1["ghost"] + doc1[at1:]
    end1 = at1 + len(step1["ghost"])
    # 2. Enter -> block mode (after `if ...:`); Ctrl+Right.
    typed2 = enter(after1, end1)
    doc2 = after1[:end1] + typed2 + after1[end1:]
    at2 = end1 + len(typed2)
    step2 = greedy(codeswift, model, doc2, at2, tmp)
    word = accept_next_word(step2["ghost"])
    # The last step may show the other side of a near tie (nothing is planned after it but Accept
    # Next Word, so an alternative with the same first word keeps the plan).
    from codeswift.engine import Engine, EngineConfig
    engine = Engine.load(EngineConfig(model=model, corpus_dir=None, measure_cost=False))
    alternatives = [{**a, "rest": a["ghost"][len(word):]}
                    for a in near_tie_alternatives(engine, doc2, at2, step2["mode"], step2["tokens"])
                    if accept_next_word(a["ghost"]) == word and a["ghost"] != step2["ghost"]]

    def line_with(text: str, offset: int, inserted: str = "") -> str:
        """The line at `offset` once `inserted` is there."""
        return text[:offset].rpartition("\n")[2] + inserted + text[offset:].partition("\n")[0]

    plan = {
        "file": "textwrap.py", "line": line, "model": model,
        "steps": [
            {**step1, "type": TYPED, "at": position(doc1, at1),
             "line_after": line_with(after1, end1), "at_after": position(after1, end1)},
            {**step2, "at": position(doc2, at2), "word": word, "rest": step2["ghost"][len(word):],
             "alternatives": alternatives,
             "line_after": line_with(doc2, at2, word), "at_after": position(doc2[:at2] + word, at2 + len(word))},
        ],
    }
    out.write_text(json.dumps(plan, indent=1), encoding="utf-8")
    for i, s in enumerate(plan["steps"], 1):
        print(f"step {i}: {s['mode']} completion at Ln {s['at']['line']}, Col {s['at']['col']}: {s['ghost']!r} "
              f"(codeswift complete {s['cli_seconds']} s)")
        for a in s.get("alternatives", ()):
            print(f"  or, a near tie at its token {a['token']} (top-2 logit gap {a['gap']}): {a['ghost']!r}")


if __name__ == "__main__":
    main()
