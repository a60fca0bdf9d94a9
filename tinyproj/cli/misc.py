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
    for package in ("numpy", "numba", "cupy-cuda12x", "torch"):
        try:
            print(f"{package:<8} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            print(f"{package:<8} not installed")
    print(f"backend  {backend.name()} (cupy usable: {backend.cupy_available()})")
    fast = kernels.cpu_module() is not None
    family = ("reference" if kernels.mode() == "reference"
              else "numba on the CPU" if fast else "reference (numba unavailable)")
    print(f"kernels  {kernels.mode()} (TINYPROJ_KERNELS): {family}; "
          f"NUMBA_DISABLE_JIT={os.environ.get('NUMBA_DISABLE_JIT', '0')}")
    threads = _threads.report()
    print(f"threads  OPENBLAS_THREAD_TIMEOUT={threads['OPENBLAS_THREAD_TIMEOUT']}"
          + ("" if threads["openblas_setting_applied"] else " (too late: numpy came first)")
          + f", OMP_WAIT_POLICY={threads['OMP_WAIT_POLICY']}, {os.cpu_count()} cores")
    from ..data import location
    path, source = location.data_dir_source()
    print(f"data     {location.data_dir()} (from {source}; --data-dir or $TINYPROJ_DATA "
          "to change)")
    print(f"cache    {location.cache_dir()} (derived arrays such as the whitened CIFAR-10; "
          "$TINYPROJ_CACHE to change)")
    return 0


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
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds per lesson")
    p.set_defaults(func=_cmd_lessons)
