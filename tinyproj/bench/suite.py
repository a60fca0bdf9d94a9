"""``tinyproj bench``: tinyproj against PyTorch on the same machine, in the same run.

Rows (batch 50 unless told otherwise):

* every 3×3 conv layer of bc_cifar10 at width 1.0: forward + backward (gradients for x and w);
* one full Algorithm-1 step of bc_cifar10 (Sign projection, clipping, Adam, square hinge) at
  width 1.0 and 0.25, with the default kernels and with ``TINYPROJ_KERNELS=reference``;
* the first step of a fresh process (imports and Numba's cache included).

Each (row, framework) runs in its own worker process (``worker.py``); the two workers of a
row take turns, ``repeats`` times, each turn one untimed run (which absorbs what the other
worker's idle threads still spin and whatever the wait cooled) and one timed run. The table
shows the median of each framework's timed runs with their interquartile range (the middle
half of the runs, "IQR"), the ratio of the medians tinyproj / PyTorch, with the IQR of the
per-turn ratios (each tinyproj run over the PyTorch run of the same turn: both felt the same
phase of a noisy machine), and the peak resident memory of one run of each. GFLOP/s count
2 flops per multiply-add, 3× the forward pass for forward + backward; the machine's
matrix-product rate (a 2048² float32 product through NumPy) is measured at the start.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

CONV_LAYERS = [(3, 128, 32), (128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8),
               (512, 512, 8)]


def torch_available() -> bool:
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


class Worker:
    """A worker process for one (framework, case); see ``worker.py`` for the protocol."""

    def __init__(self, spec: dict, env_extra=None):
        from .. import _threads
        env = dict(os.environ)
        if spec["framework"] == "torch":
            # PyTorch runs with its own defaults, not tinyproj's thread and malloc settings
            env["TINYPROJ_THREAD_DEFAULTS"] = "0"
            env["TINYPROJ_MALLOC_DEFAULTS"] = "0"
            for key in _threads.set_by_tinyproj:
                env.pop(key, None)
        env.update(env_extra or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "tinyproj.bench.worker",
                                      json.dumps(spec)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"benchmark worker exited with code {code} before answering "
                               "(its error is printed above)")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.ask("quit")
            except (BrokenPipeError, RuntimeError, ValueError):
                pass
            self.proc.wait(timeout=30)


def compare(specs: dict, repeats: int, env=None) -> dict:
    """Time the workers of ``specs`` ({label: spec}) in turns; medians and peaks per label."""
    env = env or {}
    workers = {}
    try:
        for label, spec in specs.items():
            workers[label] = Worker(spec, env.get(label))
        times = {label: [] for label in workers}
        for _ in range(repeats):
            for label, worker in workers.items():
                times[label].append(worker.ask("time")["seconds"])
        peaks = {label: worker.ask("memory")["peak_mb"] for label, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    return {label: {"median_s": statistics.median(t), "iqr_s": quartiles(t), "times_s": t,
                    "peak_mb": peaks[label]} for label, t in times.items()}


DEFAULT_REPEATS = 9
"""Turns per row. On the shared 2-core machine single runs drift by ±20 % from minute to
minute, and two runs of 5 turns gave 1.72× and 2.54× PyTorch for the same width-0.25 step
(issue 15); 9 turns halve the weight of any one slow phase in the median, and the printed
interquartile ranges show how far to trust each row. A full run takes about 4 min on an
idle 2-core machine."""


def quartiles(values) -> list:
    """``[q1, q3]``: the lower and upper quartiles (the middle half of ``values`` lies between;
    ``statistics.quantiles``, inclusive method). Fewer than 4 values give their whole range."""
    if len(values) < 4:
        return [min(values), max(values)] if values else [None, None]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def first_step(width: float, batch: int) -> float:
    """Seconds from a fresh process's start to the end of its first tinyproj step."""
    spec = {"framework": "tinyproj", "case": "first", "width": width, "batch": batch}
    return Worker(spec).ready["first_s"]


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n×n float32 matrix product through NumPy's BLAS: the best of ``repeats``
    (the machine's attainable rate; a median would fold in what neighbours are doing)."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times) / 1e9


def conv_flops(cin, cout, hw, batch) -> float:
    """Forward + backward flops of a 3×3 'same' conv: 3 × 2·N·O·C·9·H·W."""
    return 3 * 2 * batch * cout * cin * 9 * hw * hw


def step_flops(width: float, batch: int) -> float:
    """3 × the forward flops of bc_cifar10's conv and linear layers for one minibatch."""
    from tinyproj import models
    return 3 * forward_flops(models.bc_cifar10(width=width), batch)


def forward_flops(model, batch: int) -> float:
    """2·(multiply-adds) of every conv/linear layer of a bc_cifar10 ``model``, one forward pass
    of ``batch`` 32×32 images (the 3×3 convs keep the size; each pool halves it)."""
    total, hw = 0, 32
    for name, module in model.named_children():
        w = getattr(module, "weight", None)
        if name.startswith("pool"):
            hw //= 2
        if w is not None and w.ndim == 4:
            total += 2 * w.size * hw * hw
        elif w is not None and w.ndim == 2:
            total += 2 * w.size
    return total * batch


def _bounds(width):
    from tinyproj import clipping, models
    return [float(c) for c in clipping.clip_bounds(models.bc_cifar10(width=width), 0.5).values()]


STEP_ROWS = [(1.0, "auto"), (0.25, "auto"), (1.0, "reference"), (0.25, "reference")]


RESULT_KEYS = ("machine", "matmul_gflops", "batch", "repeats", "torch", "conv", "step",
               "first_step_s")
"""The keys of every :func:`run` result: a JSON file with all of them is a bench result."""


def is_result_file(path) -> bool:
    """Whether ``path`` is a file of ``tinyproj bench --json``: a JSON object with every key of
    :data:`RESULT_KEYS` (and ``machine`` an object). Only such a file is replaced by the next
    ``bench --json``; anything else there is someone's file and is kept."""
    path = os.fspath(path)
    try:
        if os.path.getsize(path) > 64 * 2**20:      # a bench result is a few kB
            return False
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):                    # UnicodeDecodeError is a ValueError
        return False
    return (isinstance(data, dict) and all(k in data for k in RESULT_KEYS)
            and isinstance(data["machine"], dict))


def run(repeats: int = DEFAULT_REPEATS, batch: int = 50, only=None, with_torch=None, out=print,
        layers=None, steps=None) -> dict:
    """Run the benchmark, print the tables through ``out``, return every number measured.

    only: None (everything) or a subset of {"conv", "step", "first"}.
    with_torch: None = when installed.
    layers: conv rows as (cin, cout, hw) (default CONV_LAYERS); steps: step rows as
    (width, kernels) (default STEP_ROWS) — small ones make a quick smoke test.
    """
    only = set(only or ("conv", "step", "first"))
    with_torch = torch_available() if with_torch is None else with_torch
    rate = matmul_rate()
    result = {"machine": machine(), "matmul_gflops": rate, "batch": batch, "repeats": repeats,
              "torch": with_torch, "conv": [], "step": [], "first_step_s": None}
    out(f"tinyproj bench — {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"NumPy {result['machine']['numpy']}, PyTorch {result['machine']['torch'] or 'absent'}")
    out(f"float32, batch {batch}, median of {repeats} alternating runs per framework "
        f"[interquartile range]; a 2048² float32 matrix product runs at up to {rate:.0f} "
        f"GFLOP/s here (% peak)")
    if "conv" in only:
        out("\n3×3 conv layers of bc_cifar10 (width 1.0), forward + backward:")
        out(_header(with_torch))
        for cin, cout, hw in layers or CONV_LAYERS:
            base = {"case": "conv", "cin": cin, "cout": cout, "hw": hw, "batch": batch}
            row = _row(f"{cin}→{cout} @{hw}×{hw}", base, repeats, with_torch,
                       conv_flops(cin, cout, hw, batch), rate)
            result["conv"].append(row)
            out(_format(row))
    if "step" in only:
        out("\nAlgorithm-1 step of bc_cifar10 (Sign, clip, Adam, square hinge):")
        out(_header(with_torch))
        for width, kernels in steps or STEP_ROWS:
            base = {"case": "step", "width": width, "batch": batch}
            torch_extra = {"bounds": _bounds(width), "tiny_bounds": _bounds(0.0625)}
            label = f"width {width:g}" + (", reference kernels" if kernels == "reference" else "")
            row = _row(label, base, repeats, with_torch and kernels == "auto",
                       step_flops(width, batch), rate, torch_extra,
                       {"TINYPROJ_KERNELS": kernels})
            row.update(width=width, kernels=kernels)
            result["step"].append(row)
            out(_format(row))
    if "first" in only:
        result["first_step_s"] = first_step(1.0, batch)
        out(f"\nfirst step of a fresh process at width 1.0 (imports, Numba cache, step): "
            f"{result['first_step_s']:.1f} s")
    return result


def _row(label, base, repeats, with_torch, flops, rate, torch_extra=None, tiny_env=None):
    specs = {"tinyproj": dict(base, framework="tinyproj")}
    if with_torch:
        specs["torch"] = dict(base, framework="torch", **(torch_extra or {}))
    env = {"tinyproj": tiny_env or {}}
    measured = compare(specs, repeats, env)
    t = measured["tinyproj"]
    row = {"label": label, "flops": flops, "tinyproj_s": t["median_s"],
           "tinyproj_iqr_s": t["iqr_s"], "tinyproj_times_s": t["times_s"],
           "tinyproj_peak_mb": t["peak_mb"],
           "gflops": flops / t["median_s"] / 1e9, "of_matmul_rate": flops / t["median_s"] / 1e9 / rate}
    if "torch" in measured:
        p = measured["torch"]
        paired = [a / b for a, b in zip(t["times_s"], p["times_s"])]
        row.update(torch_s=p["median_s"], torch_iqr_s=p["iqr_s"], torch_times_s=p["times_s"],
                   torch_peak_mb=p["peak_mb"], time_ratio=t["median_s"] / p["median_s"],
                   paired_ratios=paired, paired_ratio_iqr=quartiles(paired),
                   memory_ratio=t["peak_mb"] / p["peak_mb"] if p["peak_mb"] > 0 else None)
    return row


def _header(with_torch=True):
    line = f"{'':28}{'tinyproj ms [IQR]':>25}{'GFLOP/s':>8}{'% peak':>7}{'peak MB':>8}"
    return line + (f"{'torch ms [IQR]':>25}{'peak MB':>8}{'time × [IQR]':>19}{'mem ×':>7}"
                   if with_torch else "")


def _spread(median, iqr, scale=1e3, digits=1):
    """``'160.3 [152.0–171.2]'``: a median and its interquartile range."""
    lo, hi = (v * scale for v in iqr)
    return f"{median * scale:.{digits}f} [{lo:.{digits}f}–{hi:.{digits}f}]"


def _format(row):
    line = (f"{row['label']:28}{_spread(row['tinyproj_s'], row['tinyproj_iqr_s']):>25}"
            f"{row['gflops']:8.1f}{100 * row['of_matmul_rate']:7.0f}"
            f"{row['tinyproj_peak_mb']:8.0f}")
    if "torch_s" in row:
        mem = f"{row['memory_ratio']:7.2f}" if row.get("memory_ratio") else f"{'':7}"
        ratio = _spread(row["time_ratio"], row["paired_ratio_iqr"], scale=1, digits=2)
        line += (f"{_spread(row['torch_s'], row['torch_iqr_s']):>25}"
                 f"{row['torch_peak_mb']:8.0f}{ratio:>19}{mem}")
    return line


def machine() -> dict:
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    torch_version = None
    if torch_available():
        try:
            from importlib.metadata import version
            torch_version = version("torch")
        except Exception:   # noqa: BLE001 - a version string is only for the header
            torch_version = "installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "numpy": np.__version__,
            "python": platform.python_version(), "torch": torch_version}
