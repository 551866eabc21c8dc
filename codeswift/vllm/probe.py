"""`python -m codeswift.vllm.probe`: prove vLLM runs here, with codeswift's proposer.

Run by `codeswift setup vllm` in a child process of the vLLM environment: a tiny random qwen2
model (written to a temporary folder) generates greedily once without speculation and once with
`codeswift.vllm.proposer.CodeswiftProposer`; the two outputs must be identical. Prints one line
and exits 0, or exits 1 with the reason.
"""
from __future__ import annotations

import sys
import tempfile


def main() -> int:
    import os
    # without it vLLM's CPU worker reserves 92% of the memory (and refuses to start when other
    # processes hold some): the probe's tiny model needs 1 GiB at most
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from codeswift.testing import SAMPLE_CODE, make_tiny_model
    from vllm import LLM, SamplingParams
    with tempfile.TemporaryDirectory(prefix="codeswift-vllm-probe-") as tmp:
        path = str(make_tiny_model(tmp, hidden=256, layers=2))
        sp = SamplingParams(temperature=0, max_tokens=24)
        prompt = SAMPLE_CODE + SAMPLE_CODE[:60]
        outs = {}
        for name, spec in (("none", None), ("codeswift", {"method": "custom_class", "num_speculative_tokens": 4,
                                                          "model": "codeswift.vllm.proposer.CodeswiftProposer"})):
            llm = LLM(model=path, dtype="float32", max_model_len=1024, max_num_seqs=4,
                      speculative_config=spec, enforce_eager=True)
            outs[name] = list(llm.generate([prompt], sp, use_tqdm=False)[0].outputs[0].token_ids)
            llm.llm_engine.engine_core.shutdown()
            del llm
    if outs["none"] != outs["codeswift"]:
        print(f"probe: outputs differ: plain {outs['none']} vs codeswift {outs['codeswift']}", file=sys.stderr)
        return 1
    import vllm
    print(f"probe: vLLM {vllm.__version__} generated {len(outs['none'])} tokens, identical with codeswift's proposer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
