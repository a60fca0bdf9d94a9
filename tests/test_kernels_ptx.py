"""The CUDA sources compile, and the names Python launches are the names the sources define.

* Static checks (any machine): every kernel in ``kernels/cuda.KERNELS`` (the table gpu.py and
  host.py launch from) is defined as ``__global__ void name(...)`` in its .cu file and exported
  by host_loops.cpp, with the argument kinds the table says; every name gpu.py launches is in
  the table; no ``__global__`` kernel is left out of it. A typo fails here, without a GPU.
* Where ``nvcc`` exists: each .cu file, expanded exactly as gpu.py hands it to CuPy, plus a
  line that instantiates every template gpu.py asks for (``gpu.name_expressions``), compiles
  to PTX for sm_90 with ``-Werror all-warnings`` (and ptxas assembles it, where present).
  Skips cleanly without nvcc. Successful builds are remembered under a hash of the sources
  in ``<cache_dir>/kernels/``, so reruns are instant.
* Where libnvrtc is found (the ``nvidia-cuda-nvrtc`` wheel, the system, $TINYPROJ_NVRTC): the
  very compile cupy.RawModule makes — expanded source, gpu.OPTIONS, every name expression and
  its lowered name — with an empty log (no warning), under NVRTC's default C++ and C++11.
  NVRTC needs no GPU. Skips cleanly without it.
"""
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyproj import kernels
from tinyproj.kernels import cuda, gpu, host

GPU_SOURCE = Path(gpu.__file__).read_text()
HOST_SOURCE = (cuda.FOLDER / "host_loops.cpp").read_text()


@pytest.mark.parametrize("name", sorted(cuda.KERNELS))
def test_kernel_is_defined_in_its_cu_file_with_the_table_arguments(name):
    family, kinds = cuda.KERNELS[name]
    found = cuda.kernel_parameters(cuda.expanded(family), name)
    assert found is not None, f"{family} defines no `__global__ void {name}(`"
    assert found == kinds, f"{name} in {family}: arguments {found}, table says {kinds}"


@pytest.mark.parametrize("name", sorted(cuda.KERNELS))
def test_kernel_is_exported_by_the_host_build_with_the_same_arguments(name):
    found = cuda.kernel_parameters(HOST_SOURCE, f"tp_{name}_##SUF")
    assert found == cuda.KERNELS[name][1], f"host_loops.cpp: tp_{name}_##SUF has {found}"


def test_gpu_py_launches_exactly_the_kernels_of_the_table():
    launched = set(re.findall(r'_(?:launch|elementwise|projection|segments|fill)\(\s*"(\w+)"',
                              GPU_SOURCE))
    assert launched, "found no launches in gpu.py (has the helper been renamed?)"
    assert launched <= set(cuda.KERNELS), f"not in cuda.KERNELS: {launched - set(cuda.KERNELS)}"
    assert set(cuda.KERNELS) <= launched, f"never launched: {set(cuda.KERNELS) - launched}"


def test_no_global_kernel_is_left_out_of_the_table():
    for family in cuda.families():
        defined = set(re.findall(r"__global__\s+void\s+(\w+)\s*\(", cuda.expanded(family)))
        table = {n for n, (f, _) in cuda.KERNELS.items() if f == family}
        assert defined == table, f"{family}: defined {sorted(defined)}, table {sorted(table)}"


def test_block_size_agrees_with_the_sources():
    block = re.search(r"#define TP_BLOCK (\d+)", (cuda.FOLDER / "common.cuh").read_text())
    assert block and int(block.group(1)) == cuda.BLOCK


def test_gpu_and_host_modules_provide_every_dispatched_kernel():
    for name in kernels.KERNEL_NAMES:
        assert callable(getattr(gpu, name, None)), f"kernels/gpu.py lacks {name}"
        assert name in host.NAMES and callable(getattr(host, name)), f"kernels/host.py lacks {name}"


def test_reference_mode_still_wins_for_any_array(monkeypatch):
    class FakeDeviceArray:                      # stands for a CuPy array: dispatch by type only
        pass
    FakeDeviceArray.__module__ = "cupy._core.core"
    monkeypatch.setenv("TINYPROJ_KERNELS", "reference")
    assert kernels.get("im2col_batch", FakeDeviceArray()) is kernels.reference.im2col_batch
    monkeypatch.setenv("TINYPROJ_KERNELS", "auto")
    assert kernels.get("im2col_batch", FakeDeviceArray()) is gpu.im2col_batch


def test_importing_gpu_py_needs_no_cupy():
    code = ("import sys, tinyproj.kernels.gpu; "
            "assert 'cupy' not in sys.modules, 'gpu.py imported cupy at import time'")
    subprocess.run([__import__("sys").executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# nvcc: every family to PTX for sm_90
# ---------------------------------------------------------------------------
NVCC = shutil.which("nvcc")
PTXAS = shutil.which("ptxas") or (str(Path(NVCC).resolve().parent / "ptxas") if NVCC else None)
FLAGS = ["-arch=sm_90", "--ptx", "--fmad=false", "-Werror", "all-warnings"]


def _force_instances(family: str) -> str:
    """A line taking the address of every template instance gpu.py launches, so nvcc emits
    each one (a misspelt name or a wrong template argument is a compile error here)."""
    refs = ", ".join(f"(void*)&{expr}" for expr in gpu.name_expressions(family))
    return f"\nvoid* tinyproj_instances[] = {{{refs}}};\n"


@pytest.fixture(scope="module")
def ptx_dir():
    if NVCC is None:
        pytest.skip("nvcc not found: the PTX compile of the CUDA kernels needs the CUDA toolkit")
    from tinyproj.data import location
    version = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    extra = hashlib.sha256((version + " ".join(FLAGS) + GPU_SOURCE).encode()).hexdigest()[:8]
    key = f"{cuda.digest()}-{extra}"            # sources, nvcc version, flags and gpu.py
    folder = location.cache_dir() / "kernels" / f"ptx-{key}"
    if (folder / "ok").exists():
        return folder
    # a work folder of this process: under pytest-xdist, two workers may both get here (the
    # file's tests split between them) and once removed each other's files midway
    work = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    jobs = {}
    for family in cuda.families():
        src = work / family
        src.write_text(cuda.expanded(family) + _force_instances(family))
        jobs[family] = subprocess.Popen([NVCC, *FLAGS, str(src), "-o", str(src.with_suffix(".ptx"))],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    failures = []
    for family, job in jobs.items():
        out, _ = job.communicate()
        if job.returncode != 0 or out.strip():
            failures.append(f"{family} (exit {job.returncode}):\n{out.strip()}")
    if failures:
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail("nvcc " + " ".join(FLAGS) + " failed:\n\n" + "\n\n".join(failures))
    if PTXAS is not None and Path(PTXAS).exists():          # assemble: registers, shared memory
        for family in cuda.families():
            ptx = (work / family).with_suffix(".ptx")
            done = subprocess.run([PTXAS, "-arch=sm_90", str(ptx), "-o", str(ptx) + ".cubin"],
                                  capture_output=True, text=True)
            if done.returncode != 0 or done.stderr.strip():
                shutil.rmtree(work, ignore_errors=True)
                pytest.fail(f"ptxas -arch=sm_90 {family}: {done.stderr.strip()}")
            (work / (family + ".ptxas-ok")).touch()
    (work / "ok").write_text(version)
    if not (folder / "ok").exists():
        shutil.rmtree(folder, ignore_errors=True)       # an incomplete one (an old crash)
    try:
        work.rename(folder)
    except OSError:             # another process got there first, with the same files
        shutil.rmtree(work, ignore_errors=True)
    return folder


@pytest.mark.parametrize("family", cuda.families())
def test_family_compiles_to_ptx_for_sm90_with_every_instance(ptx_dir, family):
    ptx = (ptx_dir / family).with_suffix(".ptx").read_text()
    entries = re.findall(r"\.entry\s+(\w+)", ptx)
    assert len(entries) == len(gpu.name_expressions(family)), entries
    for name in {n for n, (f, _) in cuda.KERNELS.items() if f == family}:
        assert any(f"{len(name)}{name}I" in e for e in entries), f"{name} missing from the PTX"


@pytest.mark.parametrize("family", cuda.families())
def test_ptx_assembles_for_sm90(ptx_dir, family):
    if not (ptx_dir / (family + ".ptxas-ok")).exists():
        pytest.skip("ptxas not found beside nvcc")

def test_info_names_cupy_gpu_and_kernel_family(capsys):
    from tinyproj.cli import misc
    assert misc._cmd_info(None) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "cupy" in lines and "gpu" in lines
    assert "CPU arrays:" in lines["kernels"] and "GPU arrays:" in lines["kernels"]


# ---------------------------------------------------------------------------
# NVRTC, where its library is found: the very compile CuPy's RawModule makes (the expanded
# source, gpu.OPTIONS, gpu.name_expressions), with the lowered name of every instance
# ---------------------------------------------------------------------------
def _find_nvrtc():
    """A path to libnvrtc: $TINYPROJ_NVRTC, the nvidia-cuda-nvrtc wheel, the system, the
    CUDA toolkit beside nvcc; None when there is none."""
    import ctypes.util
    import importlib.util
    import os
    candidates = [os.environ.get("TINYPROJ_NVRTC", "")]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidates += sorted(str(p) for p in Path(root).glob("*/lib/libnvrtc.so*")
                             if "alt" not in p.name and "builtins" not in p.name)
    candidates.append(ctypes.util.find_library("nvrtc") or "")
    if NVCC:
        candidates += sorted(str(p) for p in Path(NVCC).resolve().parents[1].glob("lib*/libnvrtc.so*"))
    return next((c for c in candidates if c and Path(c).exists()), None)


@pytest.fixture(scope="module")
def nvrtc():
    import ctypes
    path = _find_nvrtc()
    if path is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or set $TINYPROJ_NVRTC)")
    for builtins in sorted(Path(path).parent.glob("libnvrtc-builtins.so*")):
        if "alt" not in builtins.name:         # NVRTC opens it by name: load it from beside
            ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
    return ctypes.CDLL(path)


def _nvrtc_compile(lib, source, options, names):
    """Compile like cupy.RawModule; returns (log, {name expression: lowered name}, ptx)."""
    import ctypes
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"tinyproj.cu", 0, None,
                                  None) == 0
    try:
        for name in names:
            assert lib.nvrtcAddNameExpression(prog, name.encode()) == 0
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        result = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        log = log.value.decode(errors="replace").strip()
        if result != 0:
            return f"compile failed ({result}): {log}", {}, ""
        lowered = {}
        for name in names:
            out = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, name.encode(), ctypes.byref(out)) == 0, name
            lowered[name] = out.value.decode()
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        return log, lowered, ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


@pytest.mark.parametrize("std", [None, "--std=c++11"], ids=["default-std", "c++11"])
@pytest.mark.parametrize("family", cuda.families())
def test_nvrtc_compiles_what_cupy_compiles(nvrtc, family, std):
    options = [*gpu.OPTIONS, "--gpu-architecture=compute_90"]     # a warning fills the log
    options += [std] if std else []
    names = gpu.name_expressions(family)
    log, lowered, ptx = _nvrtc_compile(nvrtc, cuda.expanded(family), options, names)
    assert not log, log
    assert set(lowered) == set(names)
    for name, mangled in lowered.items():
        assert f".entry {mangled}(" in ptx, f"{name} ({mangled}) missing from the PTX"
