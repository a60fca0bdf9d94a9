"""`tinyproj info` and `tinyproj lessons`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cmd_info(args) -> int:
    from importlib import metadata

    from .. import __version__, _threads, backend, kernels
    print(f"tinyproj {__version__}")
    print(f"python   {sys.version.split()[0]}")
    for package in ("numpy", "numba", "torch"):
        try:
            print(f"{package:<8} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            print(f"{package:<8} not installed")
    print(f"cupy     {_cupy_line(metadata)}")
    cupy_ok = backend.cupy_available()
    print(f"gpu      {_gpu_line() if cupy_ok else 'none usable (no CuPy, or no GPU/driver)'}")
    print(f"backend  {backend.name()} (cupy usable: {cupy_ok})")
    print(f"random   {_random_line(backend)}")
    print(f"float32  {_precision_line(backend)}")
    import numpy as np
    if kernels.mode() == "reference":
        families = "the readable reference kernels for every array (kernels/reference.py)"
    else:
        gpu_family = "cuda (kernels/gpu.py, sources in kernels/cuda/)" if cupy_ok else "no GPU"
        families = f"CPU arrays: {kernels.family(np.zeros(1))}; GPU arrays: {gpu_family}"
    print(f"kernels  {kernels.mode()} (TINYPROJ_KERNELS): {families}; "
          f"NUMBA_DISABLE_JIT={os.environ.get('NUMBA_DISABLE_JIT', '0')}")
    for line in _thread_lines(_threads.report()):
        print(line)
    from .. import _memory
    print(f"malloc   {_memory.status} (tinyproj/_memory.py)")
    from ..data import location
    path, source = location.data_dir_source()
    print(f"data     {location.data_dir()} (from {source}; --data-dir or $TINYPROJ_DATA "
          "to change)")
    print(f"cache    {location.cache_dir()} (derived arrays such as the whitened CIFAR-10; "
          "$TINYPROJ_CACHE to change)")
    return 0


def _random_line(backend) -> str:
    """What the run's generator is on this backend, and that checkpoints save its state."""
    saved = "state saved in checkpoints: a resume repeats the run's draws"
    if backend.on_device():
        return f"Philox (seed, stream) in device memory, kernels/generator.py ({saved})"
    return f"NumPy's PCG64 ({saved})"


def _precision_line(backend) -> str:
    """Whether float32 matrix products are strict or may use TF32 (an opt-in, CuPy only)."""
    opt_in = "CUPY_TF32=1 or backend.set_tf32(True)"
    if backend.name() == "cupy":
        if backend.tf32_enabled():
            return f"products may use TF32 (10-bit mantissa inputs; {opt_in})"
        return f"strict products (TF32 is an opt-in: {opt_in})"
    return "strict products (TF32 exists only on CuPy)"


def _thread_lines(threads: dict) -> list:
    """``tinyproj info``'s lines on threads: the settings in force and every pool loaded."""
    omp = threads["OMP_WAIT_POLICY"]
    omp_source = "set by tinyproj" if threads["omp_set_by_tinyproj"] else "yours"
    lines = [f"threads  {os.cpu_count()} cores; Numba {threads['numba_threads']} threads; "
             f"OMP_WAIT_POLICY={omp} ({omp_source if omp else 'unset'})"
             + ("" if threads["defaults"] else "; TINYPROJ_THREAD_DEFAULTS=0: defaults off")]
    lines += [f"         OpenBLAS {status}" for status in threads["openblas"]]
    for pool in threads["pools"]:             # threadpoolctl's view, one line per library
        extra = ", ".join(str(pool[k]) for k in ("version", "architecture", "threading_layer")
                          if pool.get(k))
        lib = pool["prefix"] if pool["internal_api"] == "openmp" else pool["internal_api"]
        lines.append(f"pool     {pool['user_api']}: {lib}"
                     + (f" ({extra})" if extra else "")
                     + f", {pool['num_threads']} threads, {os.path.basename(pool['filepath'])}")
    if not any(p["user_api"] == "openmp" for p in threads["pools"]):
        lines.append("pool     openmp: not loaded yet (Numba starts it at its first parallel "
                     "kernel)")
    return lines


def _cupy_line(metadata) -> str:
    """The installed CuPy wheel(s) and version(s), e.g. ``cupy-cuda13x 14.2.0``."""
    found = []
    for package in ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found) or "not installed (pip install 'tinyproj[gpu]' on a CUDA 13 machine)"


def _gpu_line() -> str:
    """The GPU's name and the CUDA runtime and driver versions, as CuPy sees them."""
    import cupy
    runtime = cupy.cuda.runtime

    def version(v):                          # 13000 → "13.0"
        return f"{v // 1000}.{v % 1000 // 10}"
    try:
        name = runtime.getDeviceProperties(0)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return (f"{name} (CUDA runtime {version(runtime.runtimeGetVersion())}, driver "
                f"{version(runtime.driverGetVersion())}; CuPy {cupy.__version__})")
    except Exception as exc:                 # info must print, whatever the driver says
        return f"CuPy {cupy.__version__}, but the device could not be queried ({exc})"


def _cmd_lessons(args) -> int:
    folder = ROOT / "lessons"
    files = sorted(folder.glob("[0-9][0-9]_*.py"))
    if args.names:
        files = [f for f in files if any(f.name.startswith(n) for n in args.names)]
    if not files:
        from ..errors import UserError
        raise UserError(f"no lessons found in {folder} matching {args.names or 'any name'}; "
                        "give lesson numbers such as 01 02")
    env = dict(os.environ, MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    if args.quick:
        env["TINYPROJ_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    failed = []
    for f in files:
        print(f"\n=== {f.name}{' (quick mode)' if args.quick else ''} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(f)], cwd=ROOT, env=env)
        print(f"--- {f.name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(f.name)
    if failed:
        print(f"\nfailed lessons: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("info", help="show versions, backend and kernel settings")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("lessons", help="run the lessons (quick mode with --quick)")
    p.add_argument("names", nargs="*", help="lesson prefixes to run, e.g. 01 02 (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes: seconds per lesson, about 30 s for 06 and 07 on 2 cores")
    p.set_defaults(func=_cmd_lessons)
