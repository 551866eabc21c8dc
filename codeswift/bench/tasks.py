"""Benchmark tasks: loaders for repo-dev style folders and HumanEval infilling files, the
repositories they run in, and the requests an editor sends while a task is typed.

A repo-dev style folder holds `tasks.jsonl` (task_id, repo, path, kind, prefix, suffix, gold)
and `repos/NAME.tar.gz` (unpacking to NAME/...). For each task the repository is prepared with
the task's file replaced by prefix + suffix, so the hidden span can never be retrieved.
"""
from __future__ import annotations

import gzip
import json
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import BadInputError
from ..types import CompletionRequest


@dataclass
class Task:
    task_id: str
    prefix: str
    suffix: str
    gold: str
    kind: str = "line"                 # line | function (repo-dev), or the HumanEval variant
    path: str = ""
    language: str = ""
    repo: str | None = None            # repository name (repo-dev) or None
    repos_dir: Path | None = None      # where repos/NAME.tar.gz lives
    extra: dict = field(default_factory=dict)

    @property
    def stop(self) -> str:
        return {"line": "line", "module": "none"}.get(self.kind, "block")


def load_tasks(spec: str | Path, limit: int | None = None, kinds: set[str] | None = None) -> list[Task]:
    """Tasks from a repo-dev style folder, a tasks.jsonl, or HumanEval *.jsonl(.gz) file(s)."""
    p = Path(spec)
    if p.is_dir():
        if (p / "tasks.jsonl").exists():
            tasks = _load_repo_dev(p / "tasks.jsonl")
        else:
            files = sorted(p.glob("*.jsonl.gz")) + sorted(p.glob("*.jsonl"))
            if not files:
                raise BadInputError(f"{p}: no tasks.jsonl and no *.jsonl(.gz) files")
            tasks = [t for f in files for t in _load_file(f)]
    elif p.is_file():
        tasks = _load_file(p)
    else:
        raise BadInputError(f"tasks not found: {spec}")
    if kinds:
        tasks = [t for t in tasks if t.kind in kinds]
    return spread(tasks, limit) if limit else tasks


def spread(tasks: list[Task], limit: int) -> list[Task]:
    """`limit` tasks spread evenly over the list (so every repo and kind is represented)."""
    if limit >= len(tasks):
        return tasks
    step = len(tasks) / limit
    return [tasks[int(i * step)] for i in range(limit)]


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _load_file(path: Path) -> list[Task]:
    with _open(path) as f:
        first = f.readline()
    if not first.strip():
        return []
    row = json.loads(first)
    if "gold" in row:
        return _load_repo_dev(path)
    if "canonical_solution" in row:
        return _load_humaneval(path)
    raise BadInputError(f"{path}: unknown task format (need prefix/suffix/gold or prompt/suffix/canonical_solution)")


def _load_repo_dev(path: Path) -> list[Task]:
    repos_dir = path.parent / "repos"
    out = []
    with _open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            out.append(Task(d["task_id"], d["prefix"], d["suffix"], d["gold"], d.get("kind", "line"),
                            d.get("path", ""), d.get("language", ""), d.get("repo"),
                            repos_dir if repos_dir.is_dir() else None))
    return out


def _load_humaneval(path: Path) -> list[Task]:
    variant = "line" if "SingleLine" in path.name else "function"
    out = []
    with _open(path) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append(Task(d["task_id"], d["prompt"], d["suffix"], d["canonical_solution"],
                                variant, f"{d.get('entry_point', 'task')}.py", "py"))
    return out


def long_tasks(tasks: list[Task], head_lines: int) -> list[Task]:
    """Long-generation tasks (`--mode long`): each distinct file of the tasks, generated from its
    first `head_lines` lines (the rest of the file is the gold; the repository is indexed with
    only those lines, so it cannot leak). Files too short to leave 20 lines are skipped."""
    out, seen = [], set()
    for t in tasks:
        key = (t.repo, t.path)
        if key in seen:
            continue
        seen.add(key)
        lines = (t.prefix + t.gold + t.suffix).splitlines(keepends=True)
        if len(lines) < head_lines + 20:
            continue
        out.append(Task(f"{t.repo or 'file'}/{t.path}:long", "".join(lines[:head_lines]), "",
                        "".join(lines[head_lines:]), "module", t.path, t.language, t.repo, t.repos_dir))
    return out


class RepoWorkspace:
    """Unpacked repositories, each prepared for one task at a time (task file = prefix + suffix)."""

    def __init__(self, root: Path | None = None):
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="codeswift-bench-")
        self.root = Path(root or self._tmp.name)
        self._restore: tuple[Path, str] | None = None

    def prepare(self, task: Task) -> Path | None:
        """Repository folder for `task`, with the task's file rewritten; None without a repo."""
        if not task.repo or not task.repos_dir:
            return None
        self.restore()
        repo = self.root / task.repo
        if not repo.exists():
            archive = task.repos_dir / f"{task.repo}.tar.gz"
            if not archive.exists():
                raise BadInputError(f"missing repository archive {archive}")
            with tarfile.open(archive) as tar:
                tar.extractall(self.root, filter="data")
        target = repo / task.path
        if target.exists():
            self._restore = (target, target.read_text(encoding="utf-8", errors="replace"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(task.prefix + task.suffix, encoding="utf-8")
        return repo

    def restore(self) -> None:
        if self._restore:
            path, text = self._restore
            path.write_text(text, encoding="utf-8")
            self._restore = None

    def close(self) -> None:
        self.restore()
        if self._tmp:
            self._tmp.cleanup()


# -- the requests of a task ---------------------------------------------------------------
@dataclass
class Request:
    task: Task
    prefix: str
    suffix: str
    index: int                         # request number within the task (session mode)
    follows: str = "gold"              # what the developer types: the gold span, or the model's suggestion


def build_requests(task: Task, mode: str, session_requests: int) -> list[Request]:
    """Cold: one request before the gold span; session: up to `session_requests` while it is typed."""
    if mode == "cold":
        return [Request(task, task.prefix, task.suffix, 0)]
    # Session: the developer types the gold span; the editor asks after each typed chunk.
    # Requests are spread over the span (first one before anything is typed).
    gold = task.gold
    cuts = sorted({int(round(i * len(gold) / session_requests)) for i in range(session_requests)})
    cuts = [c for c in cuts if c < len(gold)] or [0]
    return [Request(task, task.prefix + gold[:c], task.suffix, i) for i, c in enumerate(cuts)]


def word_cuts(shown: str, n: int) -> list[int]:
    """Up to n-1 offsets in `shown` at word ends (what "Accept Next Word" stops at), spread evenly."""
    ends = [m.end() for m in re.finditer(r"\s*(\w+|[^\w\s])", shown) if m.end() < len(shown)]
    return sorted({ends[int(i * len(ends) / n)] for i in range(1, n)}) if ends else []


def mixed_step(typed: str, shown: str, gold: str) -> str | None:
    """One step of a developer who knows what they mean to write (`gold`) and sees the
    suggestion `shown` after having typed `typed`: accept the suggestion's words while the gold
    goes on with them (up to half of them, then the editor asks again), else reject it and type
    the gold's next word. Returns what is typed then; None once the gold span is complete."""
    if len(typed) >= len(gold):
        return None
    rest = gold[len(typed):]
    ends = [m.end() for m in _WORD.finditer(shown)]
    accept = [e for e in ends[:max(1, (len(ends) + 1) // 2)] if rest.startswith(shown[:e])]
    if accept:
        return typed + shown[:accept[-1]]
    word = _WORD.match(rest)
    return typed + (rest[:word.end()] if word else rest)


def mixed_session(gold: str, shown: str, n: int, ask: Callable[[str], str]) -> None:
    """Up to n-1 requests after the first of a mixed session: `ask(typed)` asks at the task's
    prefix plus what is typed (see `mixed_step`) and returns the suggestion shown there."""
    typed = ""
    for _ in range(1, n):
        if (typed := mixed_step(typed, shown, gold)) is None:
            return
        shown = ask(typed)


_WORD = re.compile(r"\s*(\w+|[^\w\s])")


def completion_request(task: Task, prefix: str, max_tokens: int, stop: str | None,
                       penalty: float = 1.0, penalty_window: int = 0) -> CompletionRequest:
    """The request an editor sends at the end of `prefix` in the task's file (`stop` None: the
    task's own stop rule)."""
    return CompletionRequest(prefix=prefix, suffix=task.suffix, path=task.path, language=task.language,
                             max_tokens=max_tokens, stop=stop or task.stop, doc_id=task.task_id,
                             repetition_penalty=penalty, penalty_window=penalty_window)
