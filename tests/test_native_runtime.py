"""codeswift.native: CPU features -> llama.cpp build flags, and the child-process probe that keeps
a crashing native build out of the server."""
import signal
import sys

import pytest

from codeswift import install, native
from codeswift.native import CpuInfo, cmake_args, cpu_info

AVX2 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2"
ZEN5 = AVX2 + " avx512f avx512dq avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16 avx_vnni"
SPR = ZEN5 + " amx_bf16 amx_tile amx_int8"


def cpu(flags: str, arch: str = "x86_64") -> CpuInfo:
    return CpuInfo("Test CPU", arch, frozenset(flags.split()))


def opts(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=") for a in args)


def test_cpuinfo_is_parsed():
    c = cpu_info("processor\t: 0\nmodel name\t: AMD EPYC 9B45\nflags\t\t: " + ZEN5 + "\n\nprocessor\t: 1\n"
                 "model name\t: AMD EPYC 9B45\nflags\t\t: " + ZEN5 + "\n")
    assert c.model == "AMD EPYC 9B45"
    assert "avx512_bf16" in c.flags and "amx_tile" not in c.flags


@pytest.mark.parametrize("flags, klass", [(AVX2, "avx2"), (AVX2 + " avx512f", "avx512"),
                                          (ZEN5, "avx512-bf16"), (SPR, "amx")])
def test_cpu_class(flags, klass):
    assert cpu(flags).cpu_class == klass


def test_flags_follow_the_cpu_and_never_native_on_x86():
    o = opts(cmake_args(cpu(AVX2)))
    assert o["GGML_NATIVE"] == "OFF"
    assert o["GGML_AVX2"] == o["GGML_FMA"] == o["GGML_F16C"] == "ON"
    assert o["GGML_AVX512"] == o["GGML_AVX512_BF16"] == "OFF"
    z = opts(cmake_args(cpu(ZEN5)))
    assert z["GGML_AVX512"] == z["GGML_AVX512_BF16"] == z["GGML_AVX512_VNNI"] == z["GGML_AVX_VNNI"] == "ON"
    assert z["GGML_AMX_TILE"] == "OFF"


def test_amx_only_when_asked_and_present():
    assert opts(cmake_args(cpu(SPR)))["GGML_AMX_TILE"] == "OFF"          # default: proven path first
    assert opts(cmake_args(cpu(SPR), amx=True))["GGML_AMX_INT8"] == "ON"
    assert opts(cmake_args(cpu(ZEN5), amx=True))["GGML_AMX_TILE"] == "OFF"   # the CPU lacks it


def test_other_architectures_build_native():
    assert cmake_args(cpu("fp asimd sve", arch="aarch64")) == ["-DGGML_NATIVE=ON"]


def test_probe_reports_a_crashing_child_clearly():
    if native.library_path() is None:
        pytest.skip("llama-cpp-python not installed")
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    res = native.probe(None, child=crash)
    assert not res.ok
    assert "SIGILL" in res.detail and "codeswift setup llamacpp" in res.detail
    res = native.probe(None, child=[sys.executable, "-c", "raise SystemExit('no kernels')"])
    assert not res.ok and "no kernels" in res.detail


def test_probe_decodes_with_the_installed_build(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    from codeswift.testing import write_tiny_gguf
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", "qwen2")
    res = native.probe(gguf)
    assert res.ok, res.detail
    assert "CPU :" in res.detail or "AVX" in res.detail          # llama_print_system_info
    assert list((tmp_path / "cache" / "probe").glob("*.json"))    # cached for the next load
    assert native.probe(gguf).ok


def test_probe_without_binding_says_how_to_install(monkeypatch):
    monkeypatch.setattr(native, "library_path", lambda: None)
    res = native.probe(None)
    assert not res.ok and "codeswift[llamacpp]" in res.detail


def test_failure_names_the_signal():
    assert "SIGSEGV" in native._failure(-signal.SIGSEGV, "")
    assert "exit 3" in native._failure(3, "line\nlast words\n") and "last words" in native._failure(3, "last words")


def test_a_build_that_crashed_is_not_loaded_again(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    import json
    from codeswift.backends.llamacpp import load_llamacpp_backend
    from codeswift.engine import EngineConfig
    from codeswift.errors import RuntimeUnusableError
    from codeswift.testing import write_tiny_gguf
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", "llama")
    key = native.probe_key(native.library_path(), str(gguf), native.cpu_info())
    crashed = native.ProbeResult(False, native._failure(-signal.SIGILL, ""), "lib")
    (tmp_path / "cache" / "probe").mkdir(parents=True)
    (tmp_path / "cache" / "probe" / f"{key}.json").write_text(json.dumps(crashed.to_json()))
    with pytest.raises(RuntimeUnusableError, match="SIGILL"):
        load_llamacpp_backend(EngineConfig(model=str(gguf), backend="llamacpp"))


def test_setup_knows_when_this_cpus_build_is_installed(tmp_path, monkeypatch):
    if native.library_path() is None:
        pytest.skip("llama-cpp-python not installed")
    import json
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    args = native.cmake_args(native.cpu_info())
    assert not install._built_here(args)                          # never built by setup here
    key = native.probe_key(native.library_path(), None, native.cpu_info())
    install._binding_marker().parent.mkdir(parents=True)
    install._binding_marker().write_text(json.dumps({"cmake_args": args, "key": key}))
    assert install._built_here(args)
    assert not install._built_here(args[:-1] + ["-DGGML_AMX_BF16=ON"])   # other flags: rebuild


def test_the_installed_build_decodes_every_weight_type_in_a_child():
    """What `codeswift setup llamacpp` proves before keeping a build: Q4_0 and Q8_0 take the int8
    kernels (AMX where built) that an f32 model never runs. An AMX build the kernel refuses
    passed an f32-only probe and then died with SIGILL in-process (seen on an AMX Xeon VM)."""
    if native.library_path() is None:
        pytest.skip("llama-cpp-python is not installed")
    res = native.probe(install.probe_model(), use_cache=False, all_types=True)
    assert res.ok, res.detail


def test_setup_remembers_a_build_this_cpu_refused(tmp_path, monkeypatch):
    """The AMX attempt costs a five-minute build; once its probe died here it is not tried again
    (per CPU and flags) unless forced. The builds and probes are stand-ins: what is tested is
    setup's decision, not llama.cpp."""
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    cpu = native.CpuInfo("Test Xeon", "x86_64", frozenset({"avx2", "avx512f", "amx_tile", "amx_int8"}))
    built, logs, installed = [], [], {}
    monkeypatch.setattr(install, "cpu_info", lambda: cpu)
    monkeypatch.setattr(install, "probe_model", lambda: tmp_path / "m.gguf")
    monkeypatch.setattr(install, "build_python_binding",
                        lambda c, amx, log=print: built.append(amx) or installed.update(amx=amx) or 0)
    monkeypatch.setattr(install, "probe", lambda *a, **k: native.ProbeResult(
        not installed["amx"], "llama.cpp killed its process with SIGILL" if installed["amx"] else "ok"))
    monkeypatch.setattr(install, "library_path", lambda: tmp_path / "libllama.so")
    assert install.setup(server=False, log=logs.append).ok and built == [True, False]
    built.clear()
    assert install.setup(server=False, log=logs.append, force=True).ok and built == [True, False]
    built.clear()
    assert install.setup(server=False, log=logs.append).ok and built == []     # refused, and built
    assert any("refused the AMX build before" in line for line in logs)
