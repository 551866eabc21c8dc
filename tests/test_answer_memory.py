"""Remembered answers: the rest of the model's last answer, after what the developer accepted or
typed since (even inside one of its tokens), comes back as one draft, verified losslessly."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codeswift.completion_cache import CompletionCache, Entry
from codeswift.engine import Engine, EngineConfig
from codeswift.pref_cache import ANSWER_SCORE, Detokenizer, PrefCache
from codeswift.sources import PREF, DraftContext
from codeswift.testing import SAMPLE_CODE
from codeswift.types import CompletionRequest


@pytest.fixture(scope="module")
def tok(tiny_qwen):
    return AutoTokenizer.from_pretrained(tiny_qwen)


@pytest.fixture(scope="module")
def text(tok):
    return Detokenizer(lambda ids: tok.decode(ids, skip_special_tokens=True),
                       lambda s: tok.encode(s, add_special_tokens=False))


def test_rest_after_typing_inside_a_token_is_the_rest_of_the_text(tok, text):
    answer_text = "return self._items.pop()\n"
    ids = tuple(tok.encode(answer_text, add_special_tokens=False))
    answer = Entry("p", "s", answer_text, ids)
    assert text.rest(answer, 0) == list(ids)
    for typed in range(1, len(answer_text)):
        rest = text.rest(answer, typed)
        assert tok.decode(rest) == answer_text[typed:], typed
        # after the token the typing ended in, the model's own tokens follow unchanged
        n_kept = next(i for i in range(len(ids) + 1) if len(tok.decode(ids[:i])) >= typed)
        assert tuple(rest[len(rest) - (len(ids) - n_kept):]) == ids[n_kept:]
    assert text.rest(answer, len(answer_text) + 5) == []


def test_completion_cache_lookup_is_the_lsp_notion_of_the_rest():
    c = CompletionCache()
    c.put("a", "x = ", "\n", "foo(1)", (7, 8, 9))
    assert c.get("a", "x = fo", "\n") == "o(1)"
    assert [(e.tokens, typed) for e, typed in c.lookup("a", "x = fo", "\n")] == [((7, 8, 9), 2)]
    assert c.get("a", "x = foo(1)", "\n") is None                 # used up
    assert c.get("a", "x = fx", "\n") is None                     # typed something else
    assert c.get("a", "x = fo", "\n\n") is None                   # the text after changed
    c.put("a", "x = ", "\n", "bar")                               # asked again there: newest wins
    assert [e.text for e, _ in c.lookup("a", "x = ", "\n")] == ["bar"]


def _ctx(prefix, suffix, prompt, generated=(), doc="a.py"):
    toks = list(prompt) + list(generated)
    return DraftContext(tokens=toks, prompt_len=len(prompt), doc_id=doc, prefix=prefix, suffix=suffix)


def test_pref_cache_drafts_the_remembered_rest_as_its_own_kind(tok, text):
    cache = PrefCache(text=text, special_ids=tok.all_special_ids)
    eos = tok.eos_token_id
    answer = list(tok.encode("items.append(item)\n", add_special_tokens=False)) + [eos]
    prompt1 = [1, 2, 3]
    cache.reset(_ctx("s.", ")\n", prompt1, answer[:1]))            # the root is the first answer token
    cache.observe(_ctx("s.", ")\n", prompt1, answer[:1]), answer[1:])
    # the developer accepted "items.app" (inside the token "append"), then asked again
    prompt2 = [1, 2, 3, 4]
    rest = text.rest(Entry("s.", ")\n", "items.append(item)\n", tuple(answer)), len("items.app"))
    cache.reset(_ctx("s.items.app", ")\n", prompt2, rest[:1]))
    assert cache.answer_hits == 1
    drafts = cache.propose(_ctx("s.items.app", ")\n", prompt2, rest[:1]), 64, 4)
    assert drafts[0].tokens == rest[1:] and drafts[0].score == ANSWER_SCORE and drafts[0].meta["answer"]
    assert tok.decode(rest, skip_special_tokens=True) == "end(item)\n" and rest[-1] == eos
    # once the model left the answer, it is not proposed any more
    off = _ctx("s.items.app", ")\n", prompt2, [rest[0], 5])
    assert not any(d.meta.get("answer") for d in cache.propose(off, 64, 4))
    # another document, or a changed text after the cursor: nothing remembered
    cache.reset(_ctx("s.items.app", ")\n", prompt2, rest[:1], doc="b.py"))
    cache.reset(_ctx("s.items.app", ")\n\n", prompt2, rest[:1]))
    assert cache.answer_hits == 1


@pytest.fixture(scope="module")
def engine(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    return Engine.from_hf(model, tok, EngineConfig(measure_cost=False, persist_stats=False))


def _plain(engine, req):
    return engine.complete(CompletionRequest(**{**req.__dict__, "speculative": False})).tokens


def test_accepting_along_an_answer_is_verified_losslessly_from_memory(engine):
    """Each request after accepting part of the last answer (cut at every few characters, so
    inside tokens too) gives exactly plain greedy's tokens, and the remembered rest is drafted."""
    pref = engine.source(PREF)
    prefix = SAMPLE_CODE.split("    def pop")[0] + "    def pop(self):\n        "
    suffix = "\n\n    def peek(self):\n        return self._items[-1]\n"
    first = CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=24, stop="none", doc_id="d")
    shown = engine.complete(first).text
    assert shown and engine.complete(first).stats["steps"] == 1        # asked again: one step
    hits = pref.answer_hits
    for cut in range(1, min(len(shown), 20), 3):
        req = CompletionRequest(prefix=prefix + shown[:cut], suffix=suffix, max_tokens=24 - cut // 4,
                                stop="none", doc_id="d")
        got = engine.complete(req)
        assert got.tokens == _plain(engine, req), cut
    assert pref.answer_hits > hits
