"""The built wheel, installed without the editable checkout, indexes Python, C and C++ by grammar.

The project is copied to a temp folder and built there, because building in place writes build/
and *.egg-info into the working tree. The fresh venv gets the test venv's dependencies through
a .pth line naming its site-packages; .pth files inside a folder added that way are not
processed, so the editable install's finder stays off and only the wheel's copy is imported.
"""
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("codeswift", "datastore", "lsp", "service")

PYTHON = "def area(w, h):\n    return w * h\n\n\nclass Shape:\n    def size(self):\n        return area(1, 2)\n"
C = "struct point { int x; };\n\nint add(int a, int b) {\n    return a + b;\n}\n"
CPP = "namespace geo {\nclass Circle {\n    double r;\n};\n}\n\nint main() { return add(1, 2); }\n"
FILES = {"py/shapes.py": PYTHON, "c/add.c": C, "cpp/geo.cpp": CPP, "notes.txt": "plain text\n"}

# Run inside the fresh venv, from a temp cwd: where the packages come from and what was chunked.
PROBE = """
import json, sys
import codeswift, datastore, lsp
from codeswift.models import load_tokenizer
from datastore.repo_index import RepoIndex
index = RepoIndex.open_or_build(sys.argv[1], load_tokenizer(sys.argv[2]), progress=False)
print(json.dumps({
    "files": {m.__name__: m.__file__ for m in (codeswift, datastore, lsp)},
    "editable": any("editable" in name for name in sys.modules),
    "reused": index.report.reused,
    "records": {r.rel: [r.language, [c[:2] for c in r.chunks]] for r in index.store.files},
}))
"""


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", ".codeswift")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, src / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("codeswift-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_test_venv_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return venv


def test_wheel_ships_the_registry_and_indexes_by_grammar(tmp_path, make_tree, tiny_qwen):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"datastore/queries/languages.json", "datastore/queries/c.scm", "datastore/queries/cpp.scm",
            "datastore/queries/python.scm"} <= names

    venv = fresh_venv(tmp_path, wheel)
    repo = make_tree(FILES)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "CODESWIFT_CACHE": str(tmp_path / "cache")}
    cli = subprocess.run([str(venv / "bin" / "codeswift"), "index", str(repo), "--model", str(tiny_qwen), "--quiet"],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert "4 files (4 processed, 0 reused" in cli.stdout

    probe = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE, str(repo), str(tiny_qwen)],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout.splitlines()[-1])
    assert all(Path(f).is_relative_to(venv) for f in got["files"].values()), got["files"]
    assert not got["editable"] and got["reused"] == 4
    assert got["records"] == {
        "c/add.c": ["c", [["class", "point"], ["function", "add"]]],
        "cpp/geo.cpp": ["cpp", [["module", "geo"], ["class", "Circle"], ["function", "main"]]],
        "notes.txt": [None, []],
        "py/shapes.py": ["python", [["function", "area"], ["class", "Shape"], ["method", "size"]]],
    }
