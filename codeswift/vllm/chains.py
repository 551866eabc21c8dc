"""codeswift's drafter for an engine that verifies one chain per request (vLLM 0.32).

vLLM batches many requests; at every step it asks its proposer for one draft chain per request
(any length, empty included) and verifies them all in the next forward pass. `ChainDrafter`
answers that with codeswift's drafter: per request a `Drafter` over the sources an in-process
completion has (own context, the repository index of the request's file, the preference cache),
which merges their drafts into a token tree; the engine gets the tree's best chain (nodes 0..m,
see tree.py), at most `k` tokens. What the engine emitted after each chain tells how much of it
was accepted, so acceptance is learned per kind of draft, shared by every request. The
preference cache is shared too: a finished request's output drafts the next ones.

Lossless by construction: the engine verifies every drafted token against its own argmax.

Per-request settings travel in vLLM's `SamplingParams.extra_args` (the OpenAI API's
`vllm_xargs`), as flat keys: `codeswift_repo` (repository root), `codeswift_doc_id`,
`codeswift_path`, `codeswift_language`, `codeswift_prefix`, `codeswift_suffix` (the text around
the cursor, for remembered answers), `codeswift_max_tokens`.

Pure Python and numpy: no vLLM import (tested without it).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..budget import CostCurve, flat_curve
from ..drafting import DraftConfig, Drafter, SourceStats, StatKey
from ..pref_cache import Detokenizer, PrefCache
from ..sources import CONTEXT, PREF, REPO, ContextSource, Draft, DraftContext, DraftSource
from ..tree import TokenTree

XARG_PREFIX = "codeswift_"
_STR_ARGS = ("repo", "doc_id", "path", "language", "prefix", "suffix")


@dataclass(frozen=True)
class RequestArgs:
    """What the drafter knows of a request besides its tokens (from `extra_args`)."""
    repo: str | None = None
    doc_id: str | None = None
    path: str = ""
    language: str = ""
    prefix: str = ""
    suffix: str = ""
    max_tokens: int | None = None

    @classmethod
    def from_extra(cls, extra: dict[str, Any] | None) -> "RequestArgs":
        """Read the `codeswift_*` keys of a request's extra_args; other keys are ignored, a
        value of the wrong type raises ValueError (the service validates before sending)."""
        if not extra:
            return cls()
        if not isinstance(extra, dict):
            raise ValueError(f"extra_args must be a dict, got {type(extra).__name__}")
        vals: dict[str, Any] = {}
        for name in _STR_ARGS:
            v = extra.get(XARG_PREFIX + name)
            if v is None:
                continue
            if not isinstance(v, str):
                raise ValueError(f"{XARG_PREFIX}{name} must be a string, got {type(v).__name__}")
            vals[name] = v
        mt = extra.get(XARG_PREFIX + "max_tokens")
        if mt is not None:
            if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
                raise ValueError(f"{XARG_PREFIX}max_tokens must be a positive integer, got {mt!r}")
            vals["max_tokens"] = mt
        return cls(**vals)

    def to_extra(self) -> dict[str, Any]:
        """The inverse of `from_extra` (unset fields left out)."""
        out = {XARG_PREFIX + k: getattr(self, k) for k in _STR_ARGS if getattr(self, k)}
        if self.max_tokens is not None:
            out[XARG_PREFIX + "max_tokens"] = self.max_tokens
        return out


class SharedPrefCache(PrefCache):
    """A preference cache many concurrent requests draft from.

    `PrefCache` records one completion at a time (reset, observe, ..., next reset). Here a
    request is recorded whole when it finishes (`record`), and proposals for a request use
    that request's own remembered answers (`answers`), not the last reset's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shared = threading.RLock()

    def answers(self, ctx: DraftContext) -> list[list[int]]:
        """The rest of every remembered answer still valid at this request's cursor."""
        with self._shared:
            return self._remembered(ctx)

    def propose_for(self, ctx: DraftContext, answers: list[list[int]], max_len: int,
                    max_drafts: int) -> list[Draft]:
        with self._shared:
            self._answer_drafts = answers
            try:
                return self.propose(ctx, max_len, max_drafts)
            finally:
                self._proposed = []           # misses are not scored across requests

    def record(self, ctx: DraftContext, generated: Sequence[int]) -> None:
        """Remember a finished request: `ctx.tokens` its prompt, `generated` its output."""
        with self._shared:
            self.reset(ctx)
            self.observe(ctx, [int(t) for t in generated])
            self.flush()


class PrefView:
    """One request's view of the shared preference cache (a DraftSource)."""
    name = PREF
    cheap = True

    def __init__(self, cache: SharedPrefCache):
        self.cache = cache
        self._answers: list[list[int]] = []

    def reset(self, ctx: DraftContext) -> None:
        self._answers = self.cache.answers(ctx)

    def propose(self, ctx: DraftContext, max_len: int, max_drafts: int) -> list[Draft]:
        return self.cache.propose_for(ctx, self._answers, max_len, max_drafts)

    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        pass                                   # recorded whole when the request finishes


def best_chain(tree: TokenTree, k: int) -> list[int]:
    """The tree's most probable chain (nodes 1..m, laid out first), at most `k` tokens, without
    padding nodes (probability 0)."""
    out: list[int] = []
    i = 1
    while i < len(tree) and len(out) < k and int(tree.parents[i]) == i - 1 and float(tree.prob[i]) > 0:
        out.append(int(tree.tokens[i]))
        i += 1
    return out


def accepted_count(chain: Sequence[int], emitted: Sequence[int]) -> int:
    """Draft tokens of `chain` the engine accepted, given the tokens it emitted after it (the
    accepted drafts, then the model's own next token)."""
    n = 0
    for a, b in zip(chain, emitted):
        if int(a) != int(b):
            break
        n += 1
    return min(n, max(len(emitted) - 1, 0)) if len(emitted) <= len(chain) else n


def _chain_tree(tree: TokenTree, m: int) -> TokenTree:
    """Nodes 0..m of `tree` (its best chain): what was verified."""
    return TokenTree(tree.tokens[:m + 1].copy(), tree.parents[:m + 1].copy(), tree.depth[:m + 1].copy(),
                     tree.prob[:m + 1].copy(), list(tree.sources[:m + 1]))


@dataclass
class _Live:
    """One running request."""
    args: RequestArgs
    drafter: Drafter
    prompt_len: int
    tokens: list[int] = field(default_factory=list)
    step: int = 0
    last: tuple[DraftContext, TokenTree, list[int], int] | None = None   # ctx, chain tree, chain, n
    drafted: int = 0
    accepted: int = 0


@dataclass
class ChainStats:
    """Lifetime counters (for logs and tests)."""
    requests: int = 0
    steps: int = 0
    drafted: int = 0
    accepted: int = 0
    by_source: dict = field(default_factory=dict)


class ChainDrafter:
    """Draft chains for many concurrent requests, keyed by request id.

    `open_repo(root)` returns a `datastore.repo_index.RepoIndex` (or raises); it is called once
    per root in a background thread, and the root's requests draft from it once it is open."""

    def __init__(self, k: int, special_ids: Sequence[int] = (), stop_ids: Sequence[int] = (),
                 text: Detokenizer | None = None, open_repo: Callable[[str], Any] | None = None,
                 sources: Sequence[str] = (CONTEXT, PREF, REPO), cost: CostCurve | None = None,
                 max_live: int = 1024, draft: DraftConfig | None = None):
        if k < 1:
            raise ValueError(f"k (num_speculative_tokens) must be >= 1, got {k}")
        unknown = set(sources) - {CONTEXT, PREF, REPO}
        if unknown:
            raise ValueError(f"unknown chain sources {sorted(unknown)} (choose from context, pref, repo)")
        self.k, self.sources = k, tuple(sources)
        self.stop_ids = frozenset(int(t) for t in stop_ids)
        self.cost = cost or flat_curve()
        self.cfg = draft or DraftConfig(max_len=k, max_len_by_source={PREF: k}, max_nodes=max(16, 4 * (k + 1)))
        self.pref = (SharedPrefCache(special_ids=tuple(special_ids), text=text) if PREF in self.sources
                     else None)
        self.stats: dict[StatKey, SourceStats] = {}      # learned acceptance, shared by all requests
        self.totals = ChainStats()
        self._open_repo = open_repo if REPO in self.sources else None
        self._repos: dict[str, Any] = {}                  # root -> RepoIndex | None (opening) | Exception
        self._repo_lock = threading.Lock()
        self._live: OrderedDict[str, _Live] = OrderedDict()
        self.max_live = max_live

    # -- repositories --------------------------------------------------------------------
    def repo_index(self, root: str | None):
        """The open index of `root`, or None (none asked, still opening, or it failed)."""
        if not root or self._open_repo is None:
            return None
        with self._repo_lock:
            if root in self._repos:
                got = self._repos[root]
                return None if got is None or isinstance(got, Exception) else got
            self._repos[root] = None
        threading.Thread(target=self._open, args=(root,), name="codeswift-repo", daemon=True).start()
        return None

    def _open(self, root: str) -> None:
        try:
            got = self._open_repo(root)
        except Exception as e:                 # a bad root: no repository drafts for it
            got = e
        with self._repo_lock:
            self._repos[root] = got

    def repo_error(self, root: str) -> str | None:
        got = self._repos.get(root)
        return f"{type(got).__name__}: {got}" if isinstance(got, Exception) else None

    # -- requests ------------------------------------------------------------------------
    def _sources(self, args: RequestArgs) -> list[DraftSource]:
        out: list[DraftSource] = []
        if CONTEXT in self.sources:
            out.append(ContextSource())
        if self.pref is not None:
            out.append(PrefView(self.pref))
        index = self.repo_index(args.repo)
        if index is not None:
            from ..retrieval_sources import RepoSource
            out.append(RepoSource(index))
        return out

    def _ctx(self, live: _Live) -> DraftContext:
        a = live.args
        generated = len(live.tokens) - live.prompt_len
        depth = None if a.max_tokens is None else max(a.max_tokens - generated - 1, 0)
        stops = self.stop_ids
        return DraftContext(tokens=list(live.tokens), prompt_len=live.prompt_len, doc_id=a.doc_id,
                            path=a.path, language=a.language, step=live.step, max_depth=depth,
                            is_final=(lambda t: t in stops) if stops else None,
                            prefix=a.prefix, suffix=a.suffix)

    def _start(self, req_id: str, tokens: Sequence[int], prompt_len: int, args: RequestArgs) -> _Live:
        drafter = Drafter(self._sources(args), self.cost, self.cfg)
        drafter.stats = self.stats
        live = _Live(args, drafter, prompt_len, [int(t) for t in tokens])
        drafter.reset(self._ctx(live))
        self._live[req_id] = live
        self.totals.requests += 1
        while len(self._live) > self.max_live:             # a request vLLM never said finished
            _, old = self._live.popitem(last=False)
            old.drafter.close()
        return live

    def propose(self, req_id: str, tokens: Sequence[int], prompt_len: int,
                args: RequestArgs | None = None) -> list[int]:
        """The chain to verify after `tokens` (prompt + everything generated so far, the
        model's last token included) for request `req_id`; [] when nothing is worth it."""
        live = self._live.get(req_id)
        if live is None or prompt_len != live.prompt_len or len(tokens) < len(live.tokens):
            if live is not None:
                live.drafter.close()
            live = self._start(req_id, tokens, prompt_len, args or RequestArgs())
        else:
            self._live.move_to_end(req_id)
            n_old = len(live.tokens)
            live.tokens.extend(int(t) for t in tokens[n_old:])
            self._learn(live)
        if live.args.repo and not any(s.name == REPO for s in live.drafter.sources):
            index = self.repo_index(live.args.repo)        # opened since the request started
            if index is not None:
                from ..retrieval_sources import RepoSource
                src = RepoSource(index)
                src.reset(self._ctx(live))
                live.drafter.sources = live.drafter.sources + [src]
                live.drafter.completion.setdefault(REPO, [0, 0])
        if live.args.max_tokens is not None and len(live.tokens) - live.prompt_len >= live.args.max_tokens:
            live.last = None
            return []
        ctx = self._ctx(live)
        tree = live.drafter.propose(ctx)
        chain = best_chain(tree, self.k)
        live.last = (ctx, _chain_tree(tree, len(chain)), chain, len(live.tokens))
        live.step += 1
        live.drafted += len(chain)
        self.totals.steps += 1
        self.totals.drafted += len(chain)
        return chain

    def _learn(self, live: _Live) -> None:
        """Score the last chain against what the engine emitted after it."""
        if live.last is None:
            return
        ctx, tree, chain, n = live.last
        live.last = None
        emitted = live.tokens[n:]
        if not emitted:
            return
        acc = accepted_count(chain, emitted)
        live.accepted += acc
        self.totals.accepted += acc
        live.drafter.update(ctx, tree, list(range(acc + 1)), [int(t) for t in emitted])

    def finish(self, req_id: str) -> None:
        """The request ended (finished or aborted): remember its output, free its state."""
        live = self._live.pop(req_id, None)
        if live is None:
            return
        for name, (_, acc) in live.drafter.completion.items():
            self.totals.by_source[name] = self.totals.by_source.get(name, 0) + acc
        live.drafter.close()
        if self.pref is not None and len(live.tokens) > live.prompt_len:
            prompt = DraftContext(tokens=live.tokens[:live.prompt_len], prompt_len=live.prompt_len,
                                  doc_id=live.args.doc_id, path=live.args.path,
                                  language=live.args.language, prefix=live.args.prefix,
                                  suffix=live.args.suffix)
            self.pref.record(prompt, live.tokens[live.prompt_len:])

    def live(self) -> list[str]:
        return list(self._live)

    def request_counts(self, req_id: str) -> tuple[int, int] | None:
        """(drafted, accepted) tokens of a running request."""
        live = self._live.get(req_id)
        return None if live is None else (live.drafted, live.accepted)

    def propose_batch(self, req_ids: Sequence[str], token_rows, num_tokens: Sequence[int],
                      prompt_lens: Sequence[int], sampled: Sequence[Sequence[int]],
                      extra_of: Callable[[str], dict | None], finished: Sequence[str] = ()) -> list[list[int]]:
        """vLLM's batch: row i is request `req_ids[i]`, its tokens `token_rows[i][:num_tokens[i]]`.
        A row that sampled nothing this step (a prefill chunk) gets no chain."""
        for rid in finished:
            self.finish(rid)
        out: list[list[int]] = []
        for i, rid in enumerate(req_ids):
            if rid is None or i >= len(sampled) or not len(sampled[i]):
                out.append([])
                continue
            n = int(num_tokens[i])
            live = self._live.get(rid)
            args = None
            if live is None:
                try:
                    args = RequestArgs.from_extra(extra_of(rid))
                except ValueError:
                    args = RequestArgs()              # a bad xarg costs its drafts, not the request
            out.append(self.propose(rid, token_rows[i][:n], int(prompt_lens[i]), args))
        return out

    def close(self) -> None:
        for rid in list(self._live):
            self.finish(rid)
