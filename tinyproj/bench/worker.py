"""One benchmark process: sets up one case for one framework, then times it on request.

    python -m tinyproj.bench.worker '{"framework": "tinyproj", "case": "step", "width": 1.0}'

Protocol (one JSON object per line): the worker prints ``{"ready": ...}`` once the case is
built and warmed up, then answers each line it reads on stdin:

    time      → {"seconds": s}      one untimed run, then one timed run (a conv layer's
                                    forward+backward, or a step): the untimed run absorbs
                                    the other worker's spinning threads and cold caches
    memory    → {"peak_mb": m}      the peak resident memory of one run (see below)
    quit      → exits

Why a process per framework: each gets its own thread pools and allocator, nothing one
framework leaves behind (spinning threads, cached memory) slows the other, and the peak
resident memory can be read per framework. The parent alternates the two workers run by
run, so slow phases of a shared machine hit both alike.

Peak memory: Linux keeps the high-water mark of the resident set (VmHWM) and resets it
when "5" is written to /proc/self/clear_refs. The baseline is the resident memory after
the imports and a warm-up run of a tiny case (library code, compiled kernels and thread
pools don't count); the peak is the high-water mark during one run, minus that baseline.
So it counts the model, the optimizer state, the data and everything the run allocates.

Cases: ``conv`` (cin, cout, hw, batch: a 3×3 conv with padding 1, forward and backward with
gradients for x and w), ``step`` (width, batch: one Algorithm-1 step of bc_cifar10 with the
Sign projection, clipping, Adam and the square hinge loss), ``first`` (the time from the
worker's start to the end of its first step: imports and Numba's cache loading included).
"""
from __future__ import annotations

import json
import sys
import time

_START = time.perf_counter()

import tinyproj  # noqa: E402,F401 - its thread settings (any import order will do)


def _status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# tinyproj
# ---------------------------------------------------------------------------
def tinyproj_conv(cin, cout, hw, batch, seed=0):
    import numpy as np

    import tinyproj as tp
    import tinyproj.functional as F
    rng = np.random.default_rng(seed)
    x = tp.Tensor(rng.standard_normal((batch, cin, hw, hw), dtype=np.float32), requires_grad=True)
    w = tp.Tensor(rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.05,
                  requires_grad=True)
    gy = rng.standard_normal((batch, cout, hw, hw), dtype=np.float32)

    def run():
        x.grad = w.grad = None
        F.conv2d(x, w, padding=1).backward(gy)
    return run


def tinyproj_step(width, batch, seed=0):
    import numpy as np

    import tinyproj.functional as F
    from tinyproj import algorithm1, backend, clipping, models, optim
    rng = backend.make_rng(seed)
    model = models.bc_cifar10(width=width, rng=rng)
    model.train()
    opt = optim.Adam(model.parameters(), lr=0.003)
    bounds = clipping.clip_bounds(model, 0.5)
    host = np.random.default_rng(seed)
    x = host.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = np.arange(batch) % 10

    def run():
        algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds, rng)
    return run


# ---------------------------------------------------------------------------
# PyTorch (the optional reference)
# ---------------------------------------------------------------------------
def torch_conv(cin, cout, hw, batch, seed=0):
    import numpy as np
    import torch
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((batch, cin, hw, hw), dtype=np.float32),
                     requires_grad=True)
    w = torch.tensor(rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.05,
                     requires_grad=True)
    gy = torch.tensor(rng.standard_normal((batch, cout, hw, hw), dtype=np.float32))

    def run():
        x.grad = w.grad = None
        torch.nn.functional.conv2d(x, w, padding=1).backward(gy)
    return run


def torch_step(width, batch, seed=0, bounds=None):
    import torch

    from . import torch_ref
    torch.manual_seed(seed)
    model = torch_ref.bc_cifar10(width)
    model.train()
    step = torch_ref.SignStep(model, bounds)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    return lambda: step(x, y)


BUILDERS = {("tinyproj", "conv"): tinyproj_conv, ("tinyproj", "step"): tinyproj_step,
            ("torch", "conv"): torch_conv, ("torch", "step"): torch_step}


def _build(spec):
    """The run function of ``spec``; keys that only steer the worker are left out."""
    framework, case = spec["framework"], spec["case"]
    kwargs = {k: v for k, v in spec.items()
              if k not in ("framework", "case", "warmup", "tiny_bounds")}
    return BUILDERS[(framework, "step" if case == "first" else case)](**kwargs)


def _tiny(spec):
    """A small version of the case, run once before the baseline is read."""
    tiny = dict(spec)
    if tiny["case"] == "conv":
        tiny.update(cin=min(spec["cin"], 4), cout=4, hw=4, batch=2)
    else:
        tiny.update(width=0.0625, batch=2, case="step")
        if "bounds" in tiny:                     # PyTorch needs the tiny model's clip bounds
            tiny["bounds"] = spec["tiny_bounds"]
    return tiny


def main(argv=None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    if spec["case"] == "first":                     # cold process: imports + first step
        _build(spec)()
        print(json.dumps({"ready": True, "first_s": time.perf_counter() - _START}), flush=True)
        return 0
    _build(_tiny(spec))()                           # load libraries and kernels
    baseline = _status_mb("VmRSS")
    run = _build(spec)
    for _ in range(spec.get("warmup", 2)):
        run()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "time":
            run()
            start = time.perf_counter()
            run()
            print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
        elif command == "memory":
            ok = _reset_peak()
            run()
            peak = _status_mb("VmHWM") - baseline if ok else float("nan")
            print(json.dumps({"peak_mb": peak}), flush=True)
        elif command == "quit":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
