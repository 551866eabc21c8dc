"""Which files get indexed."""
import os

from datastore.walker import MAX_FILE_BYTES, decode_source, is_minified, read_text, walk_files


def rels(root):
    return [f.rel for f in walk_files(root)]


def test_gitignore_nested_and_negated(make_tree):
    root = make_tree({
        ".gitignore": "build/\n*.gen.py\n!keep.gen.py\n",
        "a.py": "x = 1\n",
        "keep.gen.py": "x = 1\n",
        "drop.gen.py": "x = 1\n",
        "build/out.py": "x = 1\n",
        "pkg/.gitignore": "secret.py\n",
        "pkg/secret.py": "x = 1\n",
        "pkg/ok.py": "x = 1\n",
        "other/secret.py": "x = 1\n",
        "node_modules/lib/index.js": "x\n",
        ".git/config.py": "x\n",
        ".codeswift/x.py": "x\n",
        "notes.md": "# notes\n",
        "image.png": b"\x89PNG\r\n",
        "package-lock.json": "{}",
    })
    assert rels(root) == ["a.py", "keep.gen.py", "notes.md", "other/secret.py", "pkg/ok.py"]


def test_symlink_loops_are_followed_once(make_tree):
    root = make_tree({"src/a.py": "x = 1\n"})
    os.symlink(root, root / "src" / "loop")
    os.symlink(root / "src", root / "alias")
    os.symlink(root / "missing.py", root / "broken.py")
    assert sorted(rels(root)) == ["src/a.py"]


def test_binary_huge_minified_and_non_utf8_are_unreadable(make_tree):
    root = make_tree({
        "bin.py": b"x = 1\n\x00\x01",
        "latin.py": b"s = '\xe9'\n",
        "big.py": "x = 1\n" * (MAX_FILE_BYTES // 6 + 1),
        "app.js": "var a=1;" * 2000,
        "ok.py": "s = 'é'\n",
    })
    assert [n for n in ("bin.py", "latin.py", "big.py", "app.js", "ok.py") if read_text(root / n) is not None] == ["ok.py"]


def test_minified_heuristic():
    assert is_minified("a" * 3000)
    assert not is_minified("def f():\n    return 1\n" * 200)
    assert decode_source(b"x = 1\n") == "x = 1\n"


def test_extra_exclude_patterns(make_tree):
    root = make_tree({"a.py": "x\n", "site-packages/b.py": "x\n", "test/t.py": "x\n", "pkg/test/u.py": "x\n"})
    assert rels(root) == ["a.py", "pkg/test/u.py", "site-packages/b.py", "test/t.py"]
    assert [f.rel for f in walk_files(root, ["site-packages/", "/test/"])] == ["a.py", "pkg/test/u.py"]
