"""Self-speculation (SWIFT): layer-skipping drafts from the target model itself.

Lossless with and without retrieval, the KV untouched by drafting and by the layer search,
the search deterministic under a seed and finding layers that really are redundant, sampling
exact with the draft's own distribution, and a budget that drafts only where it pays."""
import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from codeswift.backends.hf import HFBackend
from codeswift.budget import KS, CostCurve
from codeswift.drafting import DraftConfig, Drafter, self_kind
from codeswift.model_drafts import ModelDraft, ModelDraftSource
from codeswift.layer_search import LayerSearch, initial_skip
from codeswift.loop import Sampler, generate
from codeswift.sampling import probs_from_logits, sample_accept
from codeswift.self_draft import SelfDraftConfig, SelfSource, load_or_measure_cost, unavailable_reason
from codeswift.sources import SELF, ContextSource, DraftContext
from codeswift.testing import RandomSource, make_tiny_model
from codeswift.tree import build_tree, chain_tree, graft
from test_budget import tree_sizes

ARCHS = ("qwen2", "llama", "gpt2")
FLAT = CostCurve((1, 64), (10.0, 10.5))


@pytest.fixture(scope="module")
def deep_models(tmp_path_factory):
    """Four-layer tiny models: enough layers that skipping some leaves a real draft model."""
    root = tmp_path_factory.mktemp("deep")
    return {a: AutoModelForCausalLM.from_pretrained(make_tiny_model(root / a, a, layers=4), dtype=torch.float32)
            for a in ARCHS}


def plain_greedy(model, prompt, max_new):
    return model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False,
                          eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()


def prompts(vocab, n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(5, vocab, rng.integers(3, 10)).tolist() * int(rng.integers(2, 4))
            + rng.integers(5, vocab, 3).tolist() for _ in range(n)]


def self_source(backend, curve=FLAT, **cfg) -> SelfSource:
    return SelfSource(backend, curve, "tiny", SelfDraftConfig(**cfg), measure=False, persist=False)


def kv_copy(backend):
    return [(l.keys.clone(), l.values.clone()) for l in backend.cache.layers]


def assert_kv_equal(backend, saved):
    assert len(backend.cache.layers) == len(saved)
    for layer, (k, v) in zip(backend.cache.layers, saved):
        assert layer.keys.shape == k.shape and torch.equal(layer.keys, k) and torch.equal(layer.values, v)


# -- driving the stock layers ------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_skip_forward_with_no_layer_skipped_is_the_full_model(deep_models, arch):
    model = deep_models[arch]
    be = HFBackend(model)
    seq = prompts(model.config.vocab_size, 1, 0)[0]
    be.prefill(seq[:-5])
    full = model(torch.tensor([seq])).logits[0]                                 # [T, V]
    with be.draft_scope() as past:
        step = be.skip_forward(np.asarray(seq[-5:]), past, frozenset())        # 5 tokens, causal
    assert past == len(seq) - 5
    assert torch.allclose(step, full[-5:], atol=1e-4)
    with be.draft_scope() as past:                                             # the same, token by token
        rows = [be.skip_forward(np.asarray([t]), past + i, frozenset())[0] for i, t in enumerate(seq[-5:])]
    assert torch.allclose(torch.stack(rows), full[-5:], atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_skipped_layer_neither_runs_nor_grows_its_kv(deep_models, arch):
    be = HFBackend(deep_models[arch])
    be.prefill(list(range(5, 25)))
    with be.draft_scope() as past:
        be.skip_forward(np.asarray([7, 8]), past, frozenset({1, 2}))
        assert [l.keys.shape[2] for l in be.cache.layers] == [past + 2, past, past, past + 2]
    assert [l.keys.shape[2] for l in be.cache.layers] == [past] * 4


@pytest.mark.parametrize("arch", ARCHS)
def test_drafting_and_judging_leave_the_kv_exactly_as_it_was(deep_models, arch):
    model = deep_models[arch]
    be = HFBackend(model)
    seq = prompts(model.config.vocab_size, 1, 1)[0]
    be.prefill(seq[:-1])
    before = kv_copy(be)
    objects = [(l.keys, l.values) for l in be.cache.layers]
    src = self_source(be, threshold=0.0, max_len=6)
    d = src.draft(DraftContext(list(seq), len(seq)), prefix=[11, 12], max_len=6)
    assert len(d.tokens) == 6 and len(d.confidence) == 6 and all(0 < c <= 1 for c in d.confidence)
    assert_kv_equal(be, before)
    assert all(l.keys is k and l.values is v for l, (k, v) in zip(be.cache.layers, objects))
    src._match(src.search.best, seq[:-1], seq, start=len(seq) - 8)            # a search trial
    assert_kv_equal(be, before)


def test_confidence_aware_stopping(deep_models):
    be = HFBackend(deep_models["qwen2"])
    seq = prompts(deep_models["qwen2"].config.vocab_size, 1, 2)[0]
    be.prefill(seq[:-1])
    d = self_source(be, threshold=1.01, max_len=8).draft(DraftContext(list(seq), len(seq)), [], 8)
    assert len(d.tokens) == 1                          # every token is below it: stop after the first
    d = self_source(be, threshold=0.0, max_len=8).draft(DraftContext(list(seq), len(seq)), [], 5)
    assert len(d.tokens) == 5                          # the drafter's plan bounds it
    greedy = plain_greedy(deep_models["qwen2"], seq, 1)
    full = self_source(be, threshold=0.0)
    full.search.best = frozenset()                     # skipping nothing: the draft is the model
    assert full.draft(DraftContext(list(seq), len(seq)), [], 1).tokens == greedy


def test_graft_merges_into_the_tree_and_keeps_the_best_chain_first():
    tree = build_tree(1, [([5, 6], 3.0, "a", 0.9), ([7], 1.0, "b", 0.9)], 10)     # 1 -> 5 -> 6, 1 -> 7
    kind = self_kind(0.95)
    g = graft(tree, 0, [7, 8, 9], [0.99, 0.98, 0.97], [kind] * 3)               # merges into 7
    assert len(g) == len(tree) + 2 and g.tokens.tolist()[:4] == [1, 7, 8, 9]      # now the best chain
    assert g.parents.tolist()[:4] == [-1, 0, 1, 2] and g.depth.tolist()[:4] == [0, 1, 2, 3]
    assert g.sources[1] == frozenset({"b", kind}) and g.prob[1] == 0.99
    assert all(g.prob[i] <= g.prob[g.parents[i]] for i in range(1, len(g)))        # ancestor-closed


# -- lossless ------------------------------------------------------------------------------
class KVCheckingBackend(HFBackend):
    """Checks, at every verification, that the KV is exactly what the last commit left: the
    draft and the layer search (both run in between) must have rolled back all they added."""

    def commit(self, keep):
        super().commit(keep)
        self.after_commit = kv_copy(self)

    def _forward_tree(self, tokens, parents, depth):
        if getattr(self, "after_commit", None) is not None:
            assert_kv_equal(self, self.after_commit)
            self.checked += 1
        return super()._forward_tree(tokens, parents, depth)

    def prefill(self, tokens, key=None, logits=True):
        self.after_commit, self.checked = None, getattr(self, "checked", 0)
        return super().prefill(tokens, key, logits)


# -- compact KV for long contexts (TokenSwift's dynamic KV) ------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_compact_window_drafts_as_the_model_attending_to_sinks_and_recent_tokens(deep_models, arch):
    """Inside a (sinks, recent) window the draft's logits are those of the same layers attending
    only to those positions (an additive mask over the full KV), and the KV comes back intact."""
    model = deep_models[arch]
    be = HFBackend(model)
    seq = prompts(model.config.vocab_size, 1, 2)[0] * 2
    past = len(seq) - 3
    be.prefill(seq[:past])
    before = kv_copy(be)
    skip = frozenset({1})
    with be.draft_scope(window=(2, 6)) as pos:
        assert pos == past and [l.keys.shape[2] for l in be.cache.layers] == [8] * 4
        compact = be.skip_forward(np.asarray(seq[past:]), pos, skip)
        one = be.skip_forward(np.asarray([5]), pos + 3, skip, last_only=True)
    assert_kv_equal(be, before)
    # Reference: the full KV with everything but the window masked out.
    sk = be._skipper()
    keep = torch.zeros(past + 3, dtype=torch.bool)
    keep[:2] = keep[past - 6:] = True
    with be.draft_scope() as pos:
        orig = sk._causal_mask

        def windowed(rows, q):
            m = orig(rows, q).clone()
            m[..., :rows][..., ~keep[:rows]] = torch.finfo(model.dtype).min
            return m
        sk._causal_mask = windowed
        try:
            ref = be.skip_forward(np.asarray(seq[past:]), pos, skip)
        finally:
            sk._causal_mask = orig
    assert torch.allclose(compact, ref, atol=1e-4)
    assert one.shape[0] == 1 and torch.isfinite(one).all()
    with be.draft_scope(window=(2, 64)) as pos:                  # short context: the whole KV
        assert [l.keys.shape[2] for l in be.cache.layers] == [past] * 4


@pytest.mark.parametrize("arch", ARCHS)
def test_self_drafting_with_a_compact_window_is_lossless(deep_models, arch):
    model = deep_models[arch]
    vocab = model.config.vocab_size
    be = KVCheckingBackend(model)
    src = self_source(be, always=True, threshold=0.3, window=8, trials_first=2, kv_sinks=2, kv_recent=8)
    hits = 0
    for i, prompt in enumerate(prompts(vocab, 3, seed=5)):
        drafter = Drafter([src], FLAT, DraftConfig(max_nodes=24))
        got, _, _ = generate(be, prompt, 30, set(), drafter=drafter)
        assert got == plain_greedy(model, prompt, 30), f"prompt {i}: diverged"
        hits += drafter.completion[SELF][1]
    assert hits > 0, "no compact-window self-draft was accepted"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("retrieval", [False, True])
def test_self_drafting_is_lossless(deep_models, arch, retrieval):
    model = deep_models[arch]
    vocab = model.config.vocab_size
    be = KVCheckingBackend(model)
    src = self_source(be, always=True, threshold=0.3, window=8, trials_first=2)
    self_hits = 0
    for i, prompt in enumerate(prompts(vocab, 4, seed=3)):
        sources = [src] + ([ContextSource(), RandomSource(vocab, i, low=5)] if retrieval else [])
        drafter = Drafter(sources, FLAT, DraftConfig(max_nodes=24))
        got, _, st = generate(be, prompt, 30, set(), drafter=drafter)
        assert got == plain_greedy(model, prompt, 30), f"prompt {i}: diverged"
        self_hits += drafter.completion[SELF][1]
    assert self_hits > 0, "no self-drafted token was ever accepted: the test did not exercise it"
    assert be.checked > 0 and src.search.history, "the KV check or the layer search never ran"


def test_gpt_neox_declares_itself_unavailable(tmp_path):
    cfg = AutoConfig.for_model("gpt_neox", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, vocab_size=64)
    be = HFBackend(AutoModelForCausalLM.from_config(cfg))
    assert "gpt_neox" in unavailable_reason(be)
    with pytest.raises(ValueError, match="unavailable"):
        self_source(be)


def test_llamacpp_backend_has_no_self_source():
    class LlamaCppLike:
        name, device, dtype = "llamacpp", "cpu", "Q4_0"
    assert "llamacpp backend has no layer-skip API" in unavailable_reason(LlamaCppLike())


def test_engine_has_self_by_default_and_bench_ablates_it(tiny_qwen):
    from codeswift.bench.methods import engine_config, parse_methods
    from codeswift.engine import ALL_SOURCES, Engine, EngineConfig
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    eng = Engine.from_hf(model, AutoTokenizer.from_pretrained(tiny_qwen),
                         EngineConfig(measure_cost=False, persist_stats=False))
    assert SELF in ALL_SOURCES and isinstance(eng.source(SELF), SelfSource)
    assert parse_methods("codeswift,codeswift-self") == ["ar", "codeswift", "codeswift-self"]
    assert SELF not in engine_config("codeswift-self", EngineConfig()).sources
    assert SELF in engine_config("codeswift-repo", EngineConfig()).sources


# -- the layer search ------------------------------------------------------------------------
def run_search(model, seed, completions=3, **cfg) -> SelfSource:
    be = HFBackend(model)
    src = self_source(be, seed=seed, window=8, trials_first=3, windows_per_request=4, **cfg)
    for prompt in prompts(model.config.vocab_size, completions, seed=5):
        generate(be, prompt, 40, set(), drafter=Drafter([src], FLAT))
    return src


def test_layer_search_is_deterministic_under_a_seed(deep_models):
    a, b = (run_search(deep_models["llama"], seed=7) for _ in range(2))
    assert a.search.history and a.search.history == b.search.history
    assert a.search.best == b.search.best
    c = run_search(deep_models["llama"], seed=8)
    assert [t.skip for t in c.search.history] != [t.skip for t in a.search.history]


def test_layer_search_finds_the_layers_that_change_nothing(tmp_path):
    # Layers 1 and 2 write nothing to the residual stream: the model with them skipped is the
    # model, so the best set skips exactly them (skipping 0 or 3 changes the argmax).
    model = AutoModelForCausalLM.from_pretrained(make_tiny_model(tmp_path / "m", "llama", layers=4),
                                                 dtype=torch.float32)
    with torch.no_grad():
        for i in (1, 2):
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    assert initial_skip(4) == frozenset({2})
    src = run_search(model, seed=0, completions=4)
    assert src.search.best == frozenset({1, 2}) and src.search.match == 1.0
    assert any(t.taken for t in src.search.history)


def test_search_moves_and_persistence(tmp_path):
    s = LayerSearch(24, seed=1)
    assert s.best == initial_skip(24) == frozenset({7, 9, 11, 13, 15, 17})
    props = s.proposals(5)
    assert len(set(props)) == 5 and all(0 < len(p) < 24 and len(p ^ s.best) <= 2 for p in props)
    assert s.judge(0.5, [(props[0], 0.9)], lambda m, skip: m) and s.best == props[0]
    s.save(tmp_path / "skip.json", "test")
    t = LayerSearch(24, seed=2)
    assert t.load(tmp_path / "skip.json") and t.best == props[0] and t.match == 0.9 and t.evals == 1
    assert not LayerSearch(12).load(tmp_path / "skip.json")          # another model's set


def test_skip_set_is_kept_per_model_in_the_cache(deep_models, tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    be = HFBackend(deep_models["qwen2"])
    src = SelfSource(be, FLAT, "tiny-q", SelfDraftConfig(window=8, windows_per_request=4), measure=False)
    src.search.best = frozenset({0, 3})
    for prompt in prompts(deep_models["qwen2"].config.vocab_size, 2, seed=6):
        generate(be, prompt, 40, set(), drafter=Drafter([src], FLAT))
    assert list((tmp_path / "skip").glob("*.json"))
    again = SelfSource(be, FLAT, "tiny-q", measure=False)
    assert again.search.best == src.search.best and again.search.evals == src.search.evals
    assert SelfSource(be, FLAT, "other", measure=False).search.best == initial_skip(4)


def test_draft_cost_is_measured_once_and_cached(deep_models, tmp_path, monkeypatch):
    import codeswift.self_draft as sd
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    be = HFBackend(deep_models["llama"])
    calls = []
    real = sd.measure_cost
    monkeypatch.setattr(sd, "measure_cost", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = load_or_measure_cost(be, ("m", "cpu", "float32"), 400)
    again = load_or_measure_cost(be, ("m", "cpu", "float32"), 400)
    assert calls == [1] and first == again
    assert first.per_layer >= 0 and first.fraction(4) >= 1 - 1e-9      # all layers: a full pass


# -- sampling: the draft's own distribution q --------------------------------------------------
P = np.array([0.05, 0.10, 0.40, 0.05, 0.25, 0.15])
Q = np.array([0.30, 0.05, 0.05, 0.30, 0.10, 0.20])


def first_token_exact(p, q, retrieved, present):
    """The distribution of the first emitted token under the rule, enumerated: x ~ q is tried
    first with min(1, p/q), then the retrieved children one-hot on the residual (x again too
    when its node is in the tree, which `present(x)` says)."""
    out = np.zeros_like(p)
    for x, qx in enumerate(q):
        acc = min(1.0, p[x] / qx)
        out[x] += qx * acc
        r = np.maximum(p - q, 0.0)
        r /= r.sum()
        mass = qx * (1 - acc)
        for c in retrieved + ([x] if present(x) else []):
            out[c] += mass * r[c]
            mass *= 1 - r[c]
            r[c] = 0.0
            if mass == 0:
                break
            r /= r.sum()
        out += mass * r
    return out


def test_self_draw_rule_is_exact_even_when_the_budget_drops_its_node():
    present = lambda x: x != 5                       # the budget dropped the node of token 5
    assert np.allclose(first_token_exact(P, Q, [2, 4], present), P, atol=1e-12)
    base = build_tree(0, [([2], 3.0, "a", 1.0), ([4], 2.0, "a", 1.0)], 10)
    q = torch.tensor(Q)
    trees = {x: graft(base, 0, [x], [0.5], [self_kind(0.5)]) if present(x) else base for x in range(6)}
    probs = torch.tensor(np.tile(P, (8, 1)))
    gen = torch.Generator().manual_seed(0)
    counts, n = np.zeros(6), 10000
    for _ in range(n):
        x = int(torch.multinomial(q, 1, generator=gen))
        tree = trees[x]
        tree.draws = {(): (x, q)}
        path, bonus = sample_accept(tree, probs[:len(tree)], gen)
        counts[int(tree.tokens[path[1]]) if len(path) > 1 else bonus] += 1
    assert np.abs(counts / n - P).max() < 0.017                 # ~3.5 sigma at n = 10000


def test_two_drawn_tokens_keep_the_joint_distribution():
    # p(y1) and p(y2 | y1) over 4 tokens; the draft draws x1 ~ q1 and x2 ~ q2(. | x1).
    rng = np.random.default_rng(0)
    p1, q1 = rng.dirichlet(np.ones(4)), torch.tensor(rng.dirichlet(np.ones(4)))
    p2, q2 = rng.dirichlet(np.ones(4), size=4), torch.tensor(rng.dirichlet(np.ones(4), size=4))
    trees = {(a, b): graft(chain_tree(9, []), 0, [a, b], [0.5, 0.25], [self_kind(0.5)] * 2)
             for a in range(4) for b in range(4)}
    gen = torch.Generator().manual_seed(1)
    counts, n = np.zeros((4, 4)), 10000
    for _ in range(n):
        x1 = int(torch.multinomial(q1, 1, generator=gen))
        x2 = int(torch.multinomial(q2[x1], 1, generator=gen))
        tree = trees[x1, x2]
        tree.draws = {(): (x1, q1), (x1,): (x2, q2[x1])}
        probs = torch.tensor(np.stack([p1, p2[x1], p1]))       # after root, after x1, after x2 (unused)
        path, bonus = sample_accept(tree, probs, gen)
        out = [int(tree.tokens[i]) for i in path[1:]] + [bonus]
        if len(out) == 1:                                      # the next step samples y2 itself
            out.append(int(torch.multinomial(torch.tensor(p2[out[0]]), 1, generator=gen)))
        counts[out[0], out[1]] += 1
    assert np.abs(counts / n - p1[:, None] * p2).max() < 0.017


def chi_square(counts: dict, expected: dict) -> tuple[float, int]:
    """Pearson's statistic over cells expected 5+ times, everything else pooled in one cell (the
    cells `expected` leaves out included: its values need not sum to the count), and its degrees
    of freedom."""
    big = [c for c in expected if expected[c] >= 5]
    total = sum(counts.values())
    obs = [counts.get(c, 0) for c in big] + [total - sum(counts.get(c, 0) for c in big)]
    exp = [expected[c] for c in big] + [total - sum(expected[c] for c in big)]
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp) if e > 0)
    return stat, len(obs) - 1


def test_sampling_with_self_drafts_keeps_the_models_distribution(deep_models):
    # Both tokens pass the speculative rule with the draft's own q (drawn at the prompt's last
    # token, the first tree root, and after the first draw): their joint must be the model's
    # (goodness of fit).
    model = deep_models["qwen2"]
    prompt = prompts(model.config.vocab_size, 1, 7)[0]
    temp, runs = 0.3, 600
    be = HFBackend(model)
    src = self_source(be, always=True, threshold=0.0, max_len=3)
    counts: dict = {}
    drafted = 0
    for seed in range(runs):
        drafter = Drafter([src], FLAT)
        out = generate(be, prompt, 3, set(), drafter=drafter, sampler=Sampler(temp, seed=seed), cache_key="p")[0]
        counts[tuple(out[:2])] = counts.get(tuple(out[:2]), 0) + 1
        drafted += drafter.completion[SELF][0]
    assert drafted >= runs and src.search.history == []      # drafted every time; no search when sampling
    with torch.no_grad():
        p1 = probs_from_logits(model(torch.tensor([prompt])).logits[0, -1:], temp)[0].numpy()
        expected = {}
        for y1 in np.flatnonzero(p1 * runs >= 1):
            p2 = probs_from_logits(model(torch.tensor([prompt + [int(y1)]])).logits[0, -1:], temp)[0].numpy()
            expected.update({(int(y1), int(y2)): runs * p1[y1] * p2[y2] for y2 in range(len(p2))})
    stat, df = chi_square(counts, expected)
    assert df >= 3 and stat < df + 4 * (2 * df) ** 0.5, (stat, df)
    again = [generate(be, prompt, 6, set(), drafter=Drafter([src], FLAT), sampler=Sampler(temp, seed=3))[0]
             for _ in range(2)]
    assert again[0] == again[1]


# -- the budget ------------------------------------------------------------------------------
class CountingBackend(HFBackend):
    def skip_forward(self, *a, **k):
        self.skip_calls = getattr(self, "skip_calls", 0) + 1
        return super().skip_forward(*a, **k)


def test_on_a_steep_curve_self_costs_nothing(deep_models):
    # Even a perfect draft cannot pay where each verified node costs a full pass: no draft and
    # no layer search runs, so the engine is exactly as fast as without the source.
    model = deep_models["llama"]
    steep = CostCurve(KS, tuple(10.0 * k for k in KS))
    be = CountingBackend(model)
    src = self_source(be, steep, window=8)
    assert not src.could_pay(1.0)
    for prompt in prompts(model.config.vocab_size, 2, seed=8):
        got, _, st = generate(be, prompt, 30, set(), drafter=Drafter([src], steep))
        assert got == plain_greedy(model, prompt, 30) and st.tree_nodes == st.steps
    assert getattr(be, "skip_calls", 0) == 0 and src.search.history == []


def test_search_stops_where_even_a_better_set_would_not_pay(deep_models):
    src = self_source(HFBackend(deep_models["llama"]), CostCurve(KS, tuple(10.0 + 1.0 * k for k in KS)))
    assert src.worth_searching()                    # unmeasured: it might agree 95% of the time
    src.search.match = 0.1                          # measured: far too low to pay here
    assert not src.worth_searching()
    src.search.match = 0.9
    assert src.worth_searching()
    # where nothing pays, sets still compare (a better-agreeing one is worth more)
    steep = self_source(HFBackend(deep_models["llama"]), CostCurve(KS, tuple(10.0 * k for k in KS)))
    best = steep.search.best
    assert steep.value(0.5, best) < steep.value(0.9, best) < 1.0


class FixedModelSource(ModelDraftSource):
    """A model source without a model: confident drafts of known tokens at a known cost (half
    a one-token verify per drafted token)."""

    def __init__(self, curve):
        self.curve, self.calls = curve, 0

    def draft(self, ctx, prefix, max_len):
        self.calls += 1
        return ModelDraft([100 + i for i in range(max_len)], [0.95] * max_len)

    def draft_cost(self, given, drafted):
        return 0.5 * (self.curve(given) + (drafted - 1) * self.curve(1))


def drive(curve, steps, accept):
    src = FixedModelSource(curve)
    d = Drafter([src], curve)
    return src, d, tree_sizes(d, steps, accept_all=accept)


def test_budget_never_self_drafts_on_a_steep_curve():
    steep = CostCurve(KS, tuple(10.0 * k for k in KS))          # every node costs a full pass
    src, d, sizes = drive(steep, 8, accept=True)
    assert src.calls == 0 and sizes == [1] * 8


def test_budget_self_drafts_where_the_curve_is_flat_and_it_is_accepted():
    src, d, sizes = drive(FLAT, 8, accept=True)
    assert src.calls == 8 and all(s > 1 for s in sizes)
    assert d.self_rate(src) > 0.9


def test_budget_stops_self_drafting_once_it_is_seen_to_fail():
    src, d, sizes = drive(FLAT, 30, accept=False)
    assert 0 < src.calls < 30 and sizes[-5:] == [1] * 5          # explored, learned, switched off
    assert d.self_rate(src) < 0.5


def test_budget_drafts_further_on_a_flatter_curve():
    gentle = CostCurve(KS, tuple(10.0 + 2.0 * k for k in KS))
    flat = CostCurve(KS, tuple(10.0 + 0.01 * k for k in KS))
    plans = []
    for curve in (gentle, flat):
        d = Drafter([FixedModelSource(curve)], curve)
        plans.append(d._self_plan(d.sources[0], chain_tree(1, []), 1, 0, 16))
    assert 0 < plans[0] < plans[1]
