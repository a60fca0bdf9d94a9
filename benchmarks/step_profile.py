"""Where one CPU training step of bc_cifar10 spends its time: per op, per layer, per kernel.

    python benchmarks/step_profile.py [--width 0.25] [--batch 50] [--steps 10]
    python benchmarks/step_profile.py --cpu --threads 1     # work, steady on a busy machine
    python benchmarks/step_profile.py --gpu --width 1       # on CuPy: GPU time per op
    python benchmarks/step_profile.py --gpu --model alexnet_bn --batch 512 --steps 3

With ``--gpu`` the step runs on CuPy (the GPU bench's step: Sign, clip; Adam for
``bc_cifar10``, SGD with cross-entropy for ``alexnet_bn`` on 227×227 images) and every timer
waits for the device before it reads the clock, so each line is the GPU time of that op's
kernels plus its launch cost (the timed step is serialised: its total is above an untimed
one's, where the host runs ahead of the GPU).

One Algorithm-1 step (Sign, clip, Adam, square hinge), batch 50, float32, after two warm-up
steps. Times (ms per step, median over ``--steps`` steps; wall time, or with ``--cpu`` the
CPU time of all the process's threads) of

* every op's forward and backward, by op class and by the layer it ran on (a convolution's
  C→O @ input side), so the six conv layers and the pooled blocks stand apart; an op that
  calls its base class's forward (the conv fused with its max-pool) is counted once;
* inside them, each kernel (``kernels.get(name)``), the conv's matrix products
  (``functional/conv.py``'s ``matmul``) and the shifted products' ``gemm``, ``pad_rows``
  and ``unpad_rows`` (``kernels/shifted.py``), the Winograd path's transforms and stacked
  products (``kernels/winograd.py``, ``functional/conv_winograd.py``), the dW product
  included (``matmul_new``);
* the rest of the step (projection, optimizer, clip, Python between ops) as "other".

The timers wrap functions at run time (nothing in the library changes); they add a few
microseconds per call, so the total is a little above an untimed step.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import time

from tinyproj import kernels
from tinyproj.bench.worker import tinyproj_step
from tinyproj.tensor import Function

TIMES: dict = collections.defaultdict(float)
CLOCK = time.perf_counter        # --cpu: time.process_time (all threads' CPU time)


_depth = [0]


def _timed(key_of, fn, outermost=False):
    """fn timed into TIMES[key_of(args)]; outermost=True: only when no other such call is
    running (an op whose forward calls its base class's is counted once)."""
    def wrapper(*args, **kwargs):
        if outermost and _depth[0]:
            return fn(*args, **kwargs)
        _depth[0] += outermost
        start = CLOCK()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[key_of(args)] += CLOCK() - start
            _depth[0] -= outermost
    return wrapper


def _shape_of(a) -> str:
    shape = getattr(a, "shape", None)
    if shape is None or len(shape) != 4:
        return f"{tuple(shape)}" if shape is not None else ""
    return f"{shape[1]}@{shape[2]}"


def install() -> None:
    """Wrap every Function subclass's forward/backward, kernels.get's kernels and the conv
    products with timers."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    for cls in set(subclasses(Function)):
        for method in ("forward", "backward"):
            fn = cls.__dict__.get(method)
            if fn is None:
                continue
            name = cls.__name__

            def key_of(args, name=name, method=method):
                self = args[0]
                where = ""
                if name in ("Conv2d", "Conv2dMaxPool"):
                    w = args[2] if method == "forward" else self.w
                    where = f" {w.shape[1]}→{w.shape[0]}"
                    where += f"@{(args[1] if method == 'forward' else self.x).shape[2]}"
                elif len(args) > 1:
                    where = " " + _shape_of(args[1])
                return f"op  {name}.{method}{where}"
            setattr(cls, method, _timed(key_of, fn, outermost=True))
    get = kernels.get

    def timed_get(name, like=None):
        return _timed(lambda args, name=name: f"  kernel {name}", get(name, like))
    kernels.get = timed_get
    from tinyproj.functional import conv
    from tinyproj.kernels import shifted
    shifted.gemm = _timed(lambda args: f"  shifted gemm {args[0].shape}x{args[1].shape}",
                          shifted.gemm)
    shifted.pad_rows = _timed(lambda args: "  shifted pad_rows", shifted.pad_rows)
    shifted.unpad_rows = _timed(lambda args: "  shifted unpad_rows", shifted.unpad_rows)
    conv.matmul = _timed(lambda args: f"  conv matmul {args[0].shape}x{args[1].shape}",
                         conv.matmul)
    conv.matmul_new = _timed(lambda args: f"  conv matmul {args[0].shape}x{args[1].shape}",
                             conv.matmul_new)
    from tinyproj.functional import conv_winograd
    from tinyproj.kernels import winograd
    conv_winograd.products = _timed(
        lambda args: f"  winograd products {args[0].shape}x{args[1].shape}",
        conv_winograd.products)
    for name in ("input_transform", "output_transform", "output_transform_adjoint",
                 "input_transform_adjoint", "weight_transform", "weight_transform_adjoint"):
        setattr(winograd, name, _timed(lambda args, name=name: f"  winograd {name}",
                                       getattr(winograd, name)))


def _gpu_step(model: str, width: float, batch: int):
    """The GPU bench's step on CuPy, and CLOCK made to wait for the device first."""
    global CLOCK
    import cupy

    from tinyproj import backend, models
    from tinyproj.bench import gpu_suite
    backend.use("cupy")

    def clock():
        cupy.cuda.runtime.deviceSynchronize()
        return time.perf_counter()
    CLOCK = clock
    if model == "alexnet_bn":
        return gpu_suite.tinyproj_step(
            lambda rng: models.alexnet_bn(1000, input_size=227, width=width, rng=rng), batch,
            (3, 227, 227), optimizer="sgd")[1]
    return gpu_suite.tinyproj_step(lambda rng: models.bc_cifar10(width=width, rng=rng),
                                   batch, (3, 32, 32))[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--cpu", action="store_true",
                   help="CPU time of the process (all threads) instead of wall time: steadier "
                        "on a shared machine, but it counts threads spinning in a barrier")
    p.add_argument("--gpu", action="store_true",
                   help="run on CuPy and wait for the device in every timer (GPU time per op)")
    p.add_argument("--model", default="bc_cifar10", choices=["bc_cifar10", "alexnet_bn"],
                   help="alexnet_bn only with --gpu")
    p.add_argument("--threads", type=int, default=0,
                   help="cap BLAS and Numba at this many threads (tinyproj.limit_threads); "
                        "with 1 and --cpu the times count work, whatever else runs")
    args = p.parse_args(argv)
    if args.threads:
        import tinyproj
        tinyproj.limit_threads(args.threads)
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    if args.gpu and (args.cpu or args.threads):
        p.error("--gpu times the device; --cpu and --threads are for CPU steps")
    if args.gpu:
        from tinyproj import backend
        if not backend.cupy_available():
            p.error("--gpu needs CuPy and a CUDA GPU (pip install -e \".[gpu]\" on a machine "
                    "with one)")
        step = _gpu_step(args.model, args.width, args.batch)
    elif args.model != "bc_cifar10":
        p.error("--model alexnet_bn needs --gpu (227x227 images at batch 512)")
    else:
        step = tinyproj_step(args.width, args.batch)   # the bench's own step (seed 0)
    step()
    step()
    plain = []
    for _ in range(args.steps):
        t = CLOCK()
        step()
        plain.append(CLOCK() - t)
    install()
    step()
    rows, totals = collections.defaultdict(list), []
    for _ in range(args.steps):
        TIMES.clear()
        t = CLOCK()
        step()
        totals.append(CLOCK() - t)
        for k, v in TIMES.items():
            rows[k].append(v)
    total = statistics.median(totals)
    ops = sum(statistics.median(v) for k, v in rows.items() if k.startswith("op"))
    print(f"{args.model} width {args.width:g}, batch {args.batch}, "
          f"{'CPU' if args.cpu else 'GPU' if args.gpu else 'wall'} time: untimed step "
          f"{1e3 * statistics.median(plain):.1f} ms, timed {1e3 * total:.1f} ms "
          f"(median of {args.steps}); ms per step:")
    for k in sorted(rows):
        print(f"  {1e3 * statistics.median(rows[k]):7.2f}  {k}")
    print(f"  {1e3 * (total - ops):7.2f}  other (projection, optimizer, clip, Python)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
