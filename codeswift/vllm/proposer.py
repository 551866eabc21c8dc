"""The proposer class vLLM loads: codeswift's drafter inside vLLM's worker process.

    LLM(model, speculative_config={"method": "custom_class", "num_speculative_tokens": 4,
                                   "model": "codeswift.vllm.proposer.CodeswiftProposer"})

vLLM 0.32 builds it with `cls(vllm_config)`, calls `load_model(model)` on CPU and, at every
step, `propose(sampled_token_ids, num_tokens_no_spec, token_ids_cpu, slot_mappings=...)`, which
returns one chain per row of the batch. Those arguments carry no request ids, yet codeswift's
drafts are per request (which repository, which document, what was drafted last step), so the
first proposer built in a process wraps the model runner's `propose_draft_token_ids` (the one
place that has the batch and its requests) to hand the proposer the batch's request ids, prompt
lengths and `extra_args` just before vLLM calls it, and its `_update_states` (every step) to tell
it which requests finished (their output goes to the shared preference cache). The wrappers do
nothing for any other proposer.

Settings from the environment of the process that starts vLLM (the worker inherits it):
`CODESWIFT_VLLM_SOURCES` (default `context,pref,repo`).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .chains import ChainDrafter

log = logging.getLogger("codeswift.vllm")

SOURCES_ENV = "CODESWIFT_VLLM_SOURCES"
_DEBUG = bool(os.environ.get("CODESWIFT_VLLM_DEBUG"))
CLASS_PATH = "codeswift.vllm.proposer.CodeswiftProposer"


class BatchInfo:
    """What the runner wrapper hands the proposer for one step."""
    __slots__ = ("req_ids", "prompt_lens", "extra_of", "finished")

    def __init__(self, req_ids, prompt_lens, extra_of, finished):
        self.req_ids, self.prompt_lens, self.extra_of, self.finished = req_ids, prompt_lens, extra_of, finished


class CodeswiftProposer:
    """vLLM `custom_class` proposer: `ChainDrafter` over the tokenizer of the served model."""

    def __init__(self, vllm_config):
        spec = vllm_config.speculative_config
        k = int(spec.num_speculative_tokens)
        tokenizer = _load_tokenizer(vllm_config.model_config)
        from ..pref_cache import Detokenizer
        from ..prompt import detect_family, stop_token_ids
        sources = tuple(s.strip() for s in os.environ.get(SOURCES_ENV, "context,pref,repo").split(",") if s.strip())

        def open_repo(root: str):
            from datastore.repo_index import RepoIndex
            return RepoIndex.open_or_build(root, tokenizer, progress=False)

        self.drafter = ChainDrafter(
            k, special_ids=getattr(tokenizer, "all_special_ids", ()) or (),
            stop_ids=stop_token_ids(tokenizer, detect_family(tokenizer)),
            text=Detokenizer(lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
                             lambda s: tokenizer.encode(s, add_special_tokens=False)),
            open_repo=open_repo, sources=sources,
            max_live=max(64, 4 * int(vllm_config.scheduler_config.max_num_seqs)))
        self.batch: BatchInfo | None = None
        install_runner_hook()
        log.info("codeswift proposer: k=%d, sources=%s", k, ",".join(sources))

    def load_model(self, *args, **kwargs) -> None:
        """No draft model: the drafts are retrieved."""

    def set_batch(self, batch: BatchInfo) -> None:
        self.batch = batch

    def propose(self, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, *args, **kwargs) -> list[list[int]]:
        batch, self.batch = self.batch, None
        if _DEBUG and batch is not None:
            print(f"codeswift proposer: rows {batch.req_ids} finished {batch.finished} "
                  f"extra {[batch.extra_of(r) is not None for r in batch.req_ids]}", file=sys.stderr, flush=True)
        if batch is None:
            raise RuntimeError("codeswift proposer called without its batch (the runner hook did not run: "
                               "this vLLM version calls proposers differently)")
        return self.drafter.propose_batch(batch.req_ids, token_ids_cpu, num_tokens_no_spec, batch.prompt_lens,
                                          sampled_token_ids, batch.extra_of, batch.finished)


def _load_tokenizer(model_config):
    from transformers import AutoTokenizer
    name = getattr(model_config, "tokenizer", None) or model_config.model
    return AutoTokenizer.from_pretrained(name, trust_remote_code=bool(getattr(model_config, "trust_remote_code", False)),
                                         revision=getattr(model_config, "tokenizer_revision", None))


_HOOKED = "_codeswift_hooked"


def install_runner_hook() -> bool:
    """Wrap vLLM's `GPUModelRunner.propose_draft_token_ids` (CPUModelRunner inherits it) once per
    process so a `CodeswiftProposer` learns which request each row is. Returns True if wrapped
    now, False if it already was."""
    from vllm.v1.worker import gpu_model_runner as gmr
    cls = gmr.GPUModelRunner
    if getattr(cls.propose_draft_token_ids, _HOOKED, False):
        return False
    original = cls.propose_draft_token_ids

    def propose_draft_token_ids(self, scheduler_output, *args, **kwargs):
        drafter = getattr(self, "drafter", None)
        if isinstance(drafter, CodeswiftProposer):
            drafter.set_batch(batch_info(self, scheduler_output))
        return original(self, scheduler_output, *args, **kwargs)
    setattr(propose_draft_token_ids, _HOOKED, True)
    propose_draft_token_ids.__wrapped__ = original
    cls.propose_draft_token_ids = propose_draft_token_ids

    # Requests that finished are announced in the next step's scheduler output, often a step
    # that schedules no tokens (so no proposal): `_update_states` sees every step.
    update = cls._update_states

    def _update_states(self, scheduler_output, *args, **kwargs):
        drafter = getattr(self, "drafter", None)
        if isinstance(drafter, CodeswiftProposer):
            for rid in getattr(scheduler_output, "finished_req_ids", ()) or ():
                drafter.drafter.finish(rid)
        return update(self, scheduler_output, *args, **kwargs)
    _update_states.__wrapped__ = update
    cls._update_states = _update_states
    return True


def batch_info(runner: Any, scheduler_output: Any) -> BatchInfo:
    """The batch's request ids, prompt lengths, extra_args and finished ids from a model runner."""
    batch = runner.input_batch
    req_ids = list(batch.req_ids)
    requests = runner.requests

    def extra_of(rid: str):
        st = requests.get(rid)
        sp = getattr(st, "sampling_params", None)
        return getattr(sp, "extra_args", None)
    return BatchInfo(req_ids, batch.num_prompt_tokens[:len(req_ids)].tolist(), extra_of,
                     tuple(getattr(scheduler_output, "finished_req_ids", ()) or ()))
