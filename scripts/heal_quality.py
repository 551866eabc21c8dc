#!/usr/bin/env python
"""What token healing does to completions typed mid-word (EngineConfig.heal_word on vs off).

Each repo-dev task (../shared/bench/repo-dev/tasks.jsonl) is cut inside the first word of its
gold text (the user has typed its first 2 letters); the greedy completion there, post-processed
as the editor shows it, is compared with the rest of the gold: edit similarity and exact matches.

    python scripts/heal_quality.py --model ~/.cache/codeswift/gguf/qwen2.5-coder-0.5b.iq4_nl.gguf --limit 30
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from codeswift.ending import postprocess  # noqa: E402
from codeswift.engine import Engine, EngineConfig  # noqa: E402
from codeswift.types import CompletionRequest  # noqa: E402
from lsp.context import decide_stop  # noqa: E402

TASKS = ROOT.parent / "shared" / "bench" / "repo-dev" / "tasks.jsonl"


def mid_word_tasks(path: Path, limit: int) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        t = json.loads(line)
        m = re.search(r"[A-Za-z_]\w{3,}", t["gold"].split("\n")[0])
        if m:
            j = m.start() + 2
            out.append({**t, "prefix": t["prefix"] + t["gold"][:j], "gold": t["gold"][j:]})
    return out[:limit]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--tasks", default=str(TASKS))
    args = ap.parse_args()
    tasks = mid_word_tasks(Path(args.tasks), args.limit)
    for heal in (True, False):
        eng = Engine.load(EngineConfig(model=args.model, backend=args.backend, heal_word=heal, corpus_dir=None))
        sims, exact = [], 0
        for t in tasks:
            lang = t.get("language", "python")
            stop = decide_stop(t["prefix"], t["suffix"], lang)
            r = eng.complete(CompletionRequest(prefix=t["prefix"], suffix=t["suffix"], max_tokens=args.max_tokens,
                                               stop=stop, doc_id=t["task_id"], language=lang))
            text = postprocess(r.text, t["prefix"], t["suffix"], stop, lang)
            sims.append(difflib.SequenceMatcher(None, text[:len(t["gold"])], t["gold"]).ratio())
            exact += text.strip() == t["gold"].strip()
        print(f"heal_word={heal}: {len(tasks)} tasks, edit similarity {sum(sims) / len(sims):.3f}, "
              f"exact {exact}/{len(tasks)}")
        eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
