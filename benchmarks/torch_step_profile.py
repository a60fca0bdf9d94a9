"""Where PyTorch's CPU training step of bc_cifar10 spends its time — the counterpart of
benchmarks/step_profile.py, to see which parts of tinyproj's step are behind and which are not.

    python benchmarks/torch_step_profile.py [--width 0.25] [--batch 50] [--steps 10]

The step is ``tinyproj bench``'s PyTorch reference (tinyproj/bench/torch_ref.py: Sign
projection, clipping to tinyproj's own bounds, Adam, square hinge loss, batch 50, float32),
on as many threads as tinyproj uses. After three warm-up steps, ``--steps`` steps run under
``torch.profiler``; each ATen op's self time (its time minus that of the ops it calls) is
summed, divided by the number of steps and put into the groups below, so the groups add up
to the step. Needs the optional PyTorch (``pip install -e ".[bench]"``).
"""
from __future__ import annotations

import argparse
import collections
import time

GROUPS = (                     # (group, substrings of ATen op names), first match wins
    ("convolution backward", ("convolution_backward",)),
    ("convolution forward", ("mkldnn_convolution", "aten::convolution", "_convolution")),
    ("max-pool", ("max_pool2d",)),
    ("batch norm", ("batch_norm",)),
    ("ReLU", ("clamp_min", "threshold_backward", "aten::relu")),
    ("linear layers", ("aten::mm", "aten::addmm", "aten::linear", "aten::t")),
    ("Adam", ("Adam", "lerp_", "addcdiv_", "addcmul_", "sqrt", "_foreach")),
)


def group_of(name: str) -> str:
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "the rest (Sign, clip, loss, autograd, allocation)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--ops", action="store_true", help="also list the ATen ops of each group")
    args = p.parse_args(argv)
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        raise SystemExit('torch_step_profile: needs PyTorch (pip install -e ".[bench]")')
    import numba

    from tinyproj.bench.suite import _bounds
    from tinyproj.bench.worker import torch_step
    torch.set_num_threads(numba.config.NUMBA_NUM_THREADS)      # tinyproj's thread count
    step = torch_step(args.width, args.batch, bounds=_bounds(args.width))
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain = (time.perf_counter() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    groups, ops = collections.defaultdict(float), collections.defaultdict(float)
    for event in prof.key_averages():
        ms = event.self_cpu_time_total / 1e3 / args.steps          # µs over all steps → ms
        groups[group_of(event.key)] += ms
        ops[(group_of(event.key), event.key)] += ms
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, bc_cifar10 width "
          f"{args.width:g}, batch {args.batch}: {1e3 * plain:.1f} ms a step unprofiled; "
          f"self time per step (ms) under the profiler:")
    for group, ms in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {ms:7.2f}  {group}")
        if args.ops:
            for (g, name), t in sorted(ops.items(), key=lambda kv: -kv[1]):
                if g == group and t >= 0.05:
                    print(f"           {t:7.2f}  {name}")
    print(f"  {sum(groups.values()):7.2f}  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
