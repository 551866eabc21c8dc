"""Repository index: build, incremental refresh, persistence failures, unsaved edits, queries."""
import numpy as np
import pytest

import datastore.docstore as docstore
from datastore import storage
from datastore.repo_index import INDEX_FILE, RepoIndex
from datastore.tokens import LineTokenizer, encode

GEOMETRY = '''def area(width, height):
    return width * height


class Shape:
    def perimeter(self):
        return 2 * (self.width + self.height)
'''
APP = '''from pkg.geometry import area


def main():
    print(area(3, 4))
'''
WEB = 'function greet(name) { return "hello " + name; }\n'
FILES = {"pkg/geometry.py": GEOMETRY, "pkg/app.py": APP, "web/index.js": WEB, "README.md": "# demo\n"}


@pytest.fixture
def repo(make_tree):
    return make_tree(FILES)


@pytest.fixture
def analysed(monkeypatch):
    """Paths parsed+tokenized during the test."""
    seen = []
    real = docstore.analyse_file

    def spy(rel, *args):
        seen.append(rel)
        return real(rel, *args)
    monkeypatch.setattr(docstore, "analyse_file", spy)
    return seen


def continuation(index, tokenizer, prefix, **kw):
    got = index.lookup(encode(tokenizer, prefix), 24, 4, **kw)
    return tokenizer.decode(got[0].tokens) if got else None


def test_build_stores_files_chunks_symbols(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    r = index.report
    assert (r.files, r.processed, r.reused, r.reason) == (4, 4, 0, "fresh")
    assert (repo / ".codeswift" / INDEX_FILE).is_file()
    assert (repo / ".codeswift" / ".gitignore").read_text() == "*\n"
    rec = index.file_record("pkg/geometry.py")
    assert [(c[0], c[1], c[2], c[3]) for c in rec.chunks] == [
        ("function", "area", 1, 2), ("class", "Shape", 5, 7), ("method", "perimeter", 6, 7)]
    assert index.file_record("README.md").chunks == []         # token-indexed, not parsed
    assert index.definitions("area") == [("pkg/geometry.py", "function", 1)]
    assert index.stats()["tokens"] == sum(len(encode(tokenizer, t)) for t in FILES.values())


def test_lookup_finds_repository_continuations(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert continuation(index, tokenizer, "def area(width, height):\n").startswith("    return width * height")
    assert continuation(index, tokenizer, "x = 1\ndef main():\n").startswith("    print(area(3, 4))")


def test_chunk_token_ranges_decode_to_the_chunk(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    i = index.store.position["pkg/geometry.py"]
    rec = index.store.files[i]
    start, end = rec.chunks[0][6], rec.chunks[0][7]
    assert tokenizer.decode(index.store.doc_tokens(i)[start:end]) == "def area(width, height):\n    return width * height"


def test_reopen_reuses_everything_and_touches_only_changed_files(repo, tokenizer, analysed):
    RepoIndex.open_or_build(repo, tokenizer, progress=False)
    analysed.clear()
    again = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert (again.report.processed, again.report.reused, again.report.reason, analysed) == (0, 4, "unchanged", [])

    (repo / "pkg" / "app.py").write_text(APP + "\nmain()\n")
    (repo / "pkg" / "new.py").write_text("def fresh():\n    return 42\n")
    (repo / "web" / "index.js").unlink()
    changed = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    r = changed.report
    assert (r.files, r.processed, r.reused, r.removed, r.reason) == (4, 2, 2, 1, "incremental")
    assert sorted(analysed) == ["pkg/app.py", "pkg/new.py"]
    assert continuation(changed, tokenizer, "def fresh():\n").startswith("    return 42")
    assert continuation(changed, tokenizer, "function greet(name) {") is None or "hello" not in continuation(
        changed, tokenizer, "function greet(name) {")


def test_another_tokenizer_forces_a_rebuild(repo, tokenizer, analysed):
    from transformers import PreTrainedTokenizerFast

    from codeswift.testing import _train_tokenizer
    RepoIndex.open_or_build(repo, tokenizer, progress=False)
    other = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(300))
    analysed.clear()
    index = RepoIndex.open_or_build(repo, other, progress=False)
    assert index.report.reason.startswith("rebuilt (stale") and len(analysed) == 4
    # a GPT-2-style pre-tokenizer merges "\n" with the next indentation: cut inside the line
    assert continuation(index, other, "def area(width, height):\n    return").startswith(" width * height")


def test_other_format_version_forces_a_rebuild(repo, tokenizer, monkeypatch):
    RepoIndex.open_or_build(repo, tokenizer, progress=False)
    monkeypatch.setattr(storage, "FORMAT_VERSION", storage.FORMAT_VERSION + 1)
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert index.report.reason.startswith("rebuilt (stale") and index.report.processed == 4


@pytest.mark.parametrize("damage", ["garbage", "truncate", "inconsistent"])
def test_corrupt_index_is_rebuilt_not_fatal(repo, tokenizer, damage):
    RepoIndex.open_or_build(repo, tokenizer, progress=False)
    path = repo / ".codeswift" / INDEX_FILE
    if damage == "garbage":
        path.write_bytes(b"not an index at all")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    else:                                      # loads fine, but the arrays disagree
        meta, arrays = storage.load(path, "codeswift-repo", index_fp(tokenizer))
        arrays["doc_starts"] = arrays["doc_starts"] + 1
        storage.save(path, "codeswift-repo", index_fp(tokenizer), {k: v for k, v in meta.items()
                     if k not in ("format", "version", "fingerprint")}, arrays)
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert index.report.reason == "rebuilt (corrupt)" and index.report.processed == 4
    assert continuation(index, tokenizer, "def area(width, height):\n").startswith("    return width")
    assert RepoIndex.open_or_build(repo, tokenizer, progress=False).report.reason == "unchanged"


def index_fp(tokenizer):
    from datastore.tokens import fingerprint
    return fingerprint(tokenizer)


def test_killed_writer_leaves_previous_index_usable(repo, tokenizer, monkeypatch):
    RepoIndex.open_or_build(repo, tokenizer, progress=False)
    path = repo / ".codeswift" / INDEX_FILE
    before = path.read_bytes()
    (repo / "pkg" / "geometry.py").write_text(GEOMETRY.replace("width * height", "height * width"))

    real_savez = np.savez

    def dies_halfway(f, **arrays):
        real_savez(f, **{k: arrays[k] for k in list(arrays)[:1]})   # some bytes are on disk...
        raise KeyboardInterrupt("killed")                          # ...then the process dies
    monkeypatch.setattr(storage.np, "savez", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        RepoIndex.open_or_build(repo, tokenizer, progress=False)
    monkeypatch.setattr(storage.np, "savez", real_savez)

    assert path.read_bytes() == before                              # old index untouched
    assert list(path.parent.glob("*.tmp")) == []
    (path.parent / f".{INDEX_FILE}.zzz.tmp").write_bytes(b"left by a kill -9")
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    assert (index.report.reason, index.report.processed) == ("incremental", 1)
    assert continuation(index, tokenizer, "def area(width, height):\n").startswith("    return height * width")
    assert list(path.parent.glob("*.tmp")) == []                    # stale temp file cleaned


def test_unsaved_edits_replace_the_file_in_lookups(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    edited = GEOMETRY.replace("return width * height", "return abs(width) * abs(height)")
    assert index.update_file(str(repo / "pkg" / "geometry.py"), edited)      # absolute path works
    assert continuation(index, tokenizer, "def area(width, height):\n").startswith("    return abs(width)")
    assert index.stats()["overlay_files"] == 1 and index.stats()["hidden_files"] == 1
    assert [c[1] for c in index.file_record("pkg/geometry.py").chunks] == ["area", "Shape", "perimeter"]

    index.update_file("pkg/geometry.py", GEOMETRY)             # back to the saved text: no overlay
    assert index.stats()["overlay_files"] == 0
    assert continuation(index, tokenizer, "def area(width, height):\n").startswith("    return width * height")


def test_new_unsaved_file_and_removal(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    index.update_file("pkg/draft.py", "def draft_only():\n    return 'draft'\n")
    assert continuation(index, tokenizer, "def draft_only():\n").startswith("    return 'draft'")
    assert index.definitions("draft_only") == [("pkg/draft.py", "function", 1)]
    index.remove_file("pkg/draft.py")
    index.remove_file("pkg/geometry.py")
    assert "draft" not in (continuation(index, tokenizer, "def draft_only():\n") or "")
    assert index.definitions("area") == []
    assert not continuation(index, tokenizer, "def area(width, height):\n", ).startswith("    return width")


def test_exclude_path_hides_one_file(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    prefix = "def area(width, height):\n"
    assert continuation(index, tokenizer, prefix).startswith("    return width * height")
    got = continuation(index, tokenizer, prefix, exclude_path="pkg/geometry.py")
    assert got is None or not got.startswith("    return width * height")
    index.update_file("pkg/geometry.py", GEOMETRY + "\n# edited\n")
    got = continuation(index, tokenizer, prefix, exclude_path="pkg/geometry.py")
    assert got is None or not got.startswith("    return width * height")


def test_chunks_for_returns_definitions_used_near_the_cursor(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    hits = index.chunks_for("total = area(w, h) + shape.perimeter()", k=2)
    assert [(h.path, h.name, h.start_line, h.end_line) for h in hits] == [
        ("pkg/geometry.py", "perimeter", 6, 7), ("pkg/geometry.py", "area", 1, 2)]
    assert hits[1].text == "def area(width, height):\n    return width * height\n"
    assert index.chunks_for("area(1, 2)", k=2, exclude_path="pkg/geometry.py") == []
    index.update_file("pkg/geometry.py", GEOMETRY.replace("width * height", "width * height * 1"))
    assert "height * 1" in index.chunks_for("area(1, 2)", k=1)[0].text


def test_bad_root(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError):
        RepoIndex.open_or_build(tmp_path / "missing", tokenizer, progress=False)
    (tmp_path / "f.py").write_text("x")
    with pytest.raises(NotADirectoryError):
        RepoIndex.open_or_build(tmp_path / "f.py", tokenizer, progress=False)


def test_out_dir_and_refresh(repo, tokenizer, tmp_path):
    out = tmp_path / "elsewhere"
    index = RepoIndex.open_or_build(repo, tokenizer, out_dir=out, progress=False)
    assert (out / INDEX_FILE).is_file() and not (repo / ".codeswift").exists()
    (repo / "pkg" / "later.py").write_text("def later():\n    return 7\n")
    report = index.refresh()
    assert (report.processed, report.files) == (1, 5)
    assert continuation(index, tokenizer, "def later():\n").startswith("    return 7")


def test_line_tokenizer_equals_whole_text_encoding(tokenizer):
    lt = LineTokenizer(tokenizer)
    assert lt.exact
    text = GEOMETRY + APP + "\n\n  \n\tindented\r\nx = 'é'\n"
    ids, starts, cache = lt.encode(text, {})
    assert ids.tolist() == encode(tokenizer, text).tolist()
    edited = text.replace("perimeter", "circumference")
    ids2, _, _ = lt.encode(edited, cache)
    assert ids2.tolist() == encode(tokenizer, edited).tolist()


def test_line_tokenizer_picks_the_cut_that_fits_the_pre_tokenizer():
    from transformers import PreTrainedTokenizerFast

    from codeswift.testing import _train_tokenizer
    gpt2_style = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(300))
    lt = LineTokenizer(gpt2_style)
    text = GEOMETRY + APP
    ids, _, cache = lt.encode(text, {})
    assert lt.exact and ids.tolist() == encode(gpt2_style, text).tolist()
    edited = text.replace("height", "depth")
    assert lt.encode(edited, cache)[0].tolist() == encode(gpt2_style, edited).tolist()
