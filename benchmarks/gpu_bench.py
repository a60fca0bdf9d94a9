"""tinyproj on the GPU beside PyTorch eager on the same GPU, in one process (issue 12).

    python benchmarks/gpu_bench.py --out $OUT/gpu-bench.json              on a CUDA machine
    python benchmarks/gpu_bench.py --device cpu --smoke --out /tmp/b.json  the CPU smoke run

What it times (median of ``--repeats`` timed calls after ``--warmup`` untimed ones; each
call ends with a device synchronisation, so a time is the work done, not the work queued):

* ``step``: one Algorithm-1 step of ``bc_cifar10`` (Sign projection, Adam, clipping, square
  hinge loss) at batch 50, widths 1.0 and 0.25 — tinyproj on CuPy (the dataset's minibatch
  already on the device, ``sync=False`` as the training loop calls it) and PyTorch eager
  (``tinyproj/bench/torch_ref.py``, the same network and step), PyTorch in strict float32
  and with TF32 allowed;
* ``step ... replayed``: the same step captured once as a CUDA graph and replayed
  (``tinyproj/graphs.py``; the row says ``graph: "cuda"`` when it was, ``"eager"`` where it
  fell back — on the CPU always), beside the same PyTorch eager step;
* ``epoch``: the projected time of a 50,000-image epoch (1,000 steps at the measured step
  time) plus the measured evaluation of 10,000 test images (eval-mode forward, batch 500);
* ``draw``: one sweep draw — batch-norm re-estimation over the 50,000 training images
  (train-mode forward without gradients, batch 500) and scoring 10,000 test images;
* ``alexnet``: one AlexNet-BN step at batch 512 on 227×227 synthetic images (SGD, Sign),
  tinyproj and a PyTorch model built layer for layer from tinyproj's (:func:`to_torch`);
* peak device memory of each framework (CuPy's memory pool high-water mark as seen by this
  script; ``torch.cuda.max_memory_allocated``).

* ``trajectory``: the losses of 20 steps from the same initial weights and data at width
  0.25 (tinyproj and PyTorch), to compare strict float32 with TF32 (``--tf32``: CuPy's
  ``CUPY_TF32=1`` for tinyproj, ``allow_tf32`` for PyTorch; run the script once each way —
  ``gpu_check.sh`` does — and compare the two files' trajectories).

The JSON names the GPU, CUDA, CuPy and PyTorch versions. Ratios are tinyproj / PyTorch.
``--device cpu`` runs the same code on NumPy and PyTorch's CPU build (``--smoke``: tiny
sizes, one repeat) so CPU CI checks that the script works; its times mean nothing.
``--device standin`` runs tinyproj on the CPU stand-in for CuPy (``tinyproj/standin``): the
device code path of this script — arrays that refuse to mix with host arrays, the step
recorded and replayed as a graph — checked without a GPU.

The JSON is rewritten (atomically) after every row with ``"complete": false``, and once more
with ``"complete": true`` at the end: a run that ``gpu_check.sh``'s timeout stops keeps the
rows it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout

import tinyproj.functional as F                                    # noqa: E402
from tinyproj import algorithm1, backend, clipping, models, optim  # noqa: E402
from tinyproj.tensor import no_grad                                # noqa: E402


# -- timing ------------------------------------------------------------------------------
def make_sync(device: str):
    """A function that waits for both frameworks' queued GPU work (a no-op on the CPU)."""
    if device != "gpu":
        return lambda: None
    import cupy
    import torch

    def sync():
        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()
    return sync


def timed(fn, sync, warmup: int, repeats: int) -> dict:
    """Median, min and max seconds of ``fn`` over ``repeats`` synchronised calls."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


# -- tinyproj side -------------------------------------------------------------------------
def tinyproj_step(model_fn, batch, shape, optimizer="adam", seed=0):
    rng = backend.make_rng(seed)
    model = model_fn(rng)
    model.train()
    opt = (optim.Adam(model.parameters(), lr=0.003) if optimizer == "adam"
           else optim.SGD(model.parameters(), lr=0.01))
    bounds = clipping.clip_bounds(model, 0.5)
    host = np.random.default_rng(seed)
    x = backend.asarray(host.standard_normal((batch,) + shape, dtype=np.float32))
    y = backend.asarray(np.arange(batch) % 10)
    loss = F.square_hinge_loss if optimizer == "adam" else F.cross_entropy

    def run():
        algorithm1.train_step(model, x, y, loss, opt, "sign", bounds, rng, sync=False)
    return model, run


def tinyproj_replayed_step(model_fn, batch, shape, seed=0):
    """``tinyproj_step``'s step (same model, data and seed) as a :class:`graphs.StepGraph`:
    two eager warm-up calls, then captured once and replayed (CuPy); eager elsewhere."""
    from tinyproj import graphs
    rng = backend.make_rng(seed)
    model = model_fn(rng)
    model.train()
    opt = optim.Adam(model.parameters(), lr=0.003)
    bounds = clipping.clip_bounds(model, 0.5)
    host = np.random.default_rng(seed)
    x = backend.asarray(host.standard_normal((batch,) + shape, dtype=np.float32))
    y = backend.asarray(np.arange(batch) % 10)

    def step():
        return (algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds,
                                      rng, sync=False),)
    graph = graphs.capture_step(step, optimizer=opt, prepare=opt.write_step_scalars,
                                mode="auto", log=lambda line: print(line, flush=True))
    return graph


def tinyproj_forward(model, images: int, batch: int, shape, train_mode: bool):
    """Forward passes over ``images`` synthetic images without gradients (re-estimation or
    scoring); the input batch is made once on the device."""
    x = backend.asarray(np.random.default_rng(1).standard_normal((batch,) + shape,
                                                                  dtype=np.float32))

    def run():
        model.train() if train_mode else model.eval()
        with no_grad():
            for _ in range(max(1, images // batch)):
                model(x)
    return run


# -- PyTorch side --------------------------------------------------------------------------
def to_torch(model, torch_device):
    """A torch.nn.Sequential with tinyproj ``model``'s layers and weights, in its order."""
    import torch
    from torch import nn
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            t = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          stride=layer.stride, padding=layer.padding, bias=False)
        elif kind == "Linear":
            t = nn.Linear(layer.in_features, layer.out_features, bias=False)
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            n = int(np.prod(layer.weight.data.shape))
            t = getattr(nn, kind)(n, eps=1e-5, momentum=0.1)
        elif kind == "ReLU":
            t = nn.ReLU()
        elif kind == "MaxPool2d":
            t = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif kind == "Flatten":
            t = nn.Flatten()
        elif kind == "Dropout":
            continue
        else:
            raise TypeError(f"to_torch: no PyTorch twin for tinyproj layer {kind}")
        if kind in ("Conv2d", "Linear"):
            with torch.no_grad():
                t.weight.copy_(torch.as_tensor(backend.to_numpy(layer.weight.data)))
        layers.append(t)
    return nn.Sequential(*layers).to(torch_device)


def torch_step(tmodel, bounds, batch, shape, torch_device, optimizer="adam", seed=0):
    import torch

    from tinyproj.bench import torch_ref
    tmodel.train()
    if optimizer == "adam":
        step = torch_ref.SignStep(tmodel, bounds)
    else:
        step = _TorchSignSGD(tmodel, bounds)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch,) + shape, generator=g).to(torch_device)
    y = (torch.arange(batch) % 10).to(torch_device)
    return lambda: step(x, y)


class _TorchSignSGD:
    """Algorithm 1 with Sign, plain SGD and cross-entropy (the AlexNet step), in PyTorch."""

    def __init__(self, model, bounds, lr=0.01):
        import torch
        self.model, self.bounds = model, bounds
        self.weights = [p for p in model.parameters() if p.ndim >= 2]
        self.opt = torch.optim.SGD(model.parameters(), lr=lr)

    def __call__(self, x, y):
        import torch
        saved = [w.detach().clone() for w in self.weights]
        with torch.no_grad():
            for w in self.weights:
                w.copy_(torch.where(w >= 0, 1.0, -1.0) * w.abs().max())
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for w, s in zip(self.weights, saved):
                w.copy_(s)
        self.opt.step()
        with torch.no_grad():
            for w, c in zip(self.weights, self.bounds):
                w.clamp_(-c, c)


def torch_forward(tmodel, images, batch, shape, torch_device, train_mode):
    import torch
    x = torch.randn((batch,) + shape).to(torch_device)

    def run():
        tmodel.train(train_mode)
        with torch.no_grad():
            for _ in range(max(1, images // batch)):
                tmodel(x)
    return run


# -- the run -------------------------------------------------------------------------------
def versions(device: str) -> dict:
    import torch
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "device": device}
    if device == "gpu":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info.update(gpu=props["name"].decode(), cupy=cupy.__version__,
                    cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                    cuda_driver=cupy.cuda.runtime.driverGetVersion())
    return info


def peak_memory(device: str) -> dict:
    if device != "gpu":
        return {}
    import cupy
    import torch
    return {"tinyproj_pool_bytes": int(cupy.get_default_memory_pool().total_bytes()),
            "torch_max_allocated_bytes": int(torch.cuda.max_memory_allocated())}


def trajectory(device, torch_device, steps: int, width: float, batch: int, sync) -> dict:
    """Losses of ``steps`` steps from the same weights on the same fixed minibatch."""
    import torch
    rng = backend.make_rng(5)
    model = models.bc_cifar10(width=width, rng=rng)
    model.train()
    tmodel = to_torch(model, torch_device)            # the same initial weights
    bounds = list(clipping.clip_bounds(model, 0.5).values())
    opt = optim.Adam(model.parameters(), lr=0.003)
    host = np.random.default_rng(5)
    x_host = host.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y_host = np.arange(batch) % 10
    x, y = backend.asarray(x_host), backend.asarray(y_host)
    bounds_map = clipping.clip_bounds(model, 0.5)
    mine = [float(algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign",
                                        bounds_map, rng)) for _ in range(steps)]
    from tinyproj.bench import torch_ref
    tmodel.train()
    tstep = torch_ref.SignStep(tmodel, bounds)
    tx, ty = torch.from_numpy(x_host).to(torch_device), torch.from_numpy(y_host).to(torch_device)
    theirs = []
    for _ in range(steps):
        out = tstep(tx, ty)
        theirs.append(float(out) if out is not None else float("nan"))
    sync()
    return {"width": width, "batch": batch, "tinyproj_losses": mine, "torch_losses": theirs}


BACKENDS = {"gpu": "cupy", "cpu": "numpy", "standin": "standin"}


def write_json(out: Path, result: dict) -> None:
    """Write ``result`` to ``out`` whole or not at all (a temporary file, then a rename)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)


def run(device: str, smoke: bool, repeats: int, warmup: int, skip=(), tf32=False,
        out: Path | None = None) -> dict:
    """Measure every row; with ``out``, the partial result is written after each row."""
    import torch
    if tf32 and device == "gpu":
        os.environ["CUPY_TF32"] = "1"          # read by CuPy when it is first imported
    backend.use(BACKENDS[device])
    torch_device = "cuda" if device == "gpu" else "cpu"
    sync = make_sync(device)
    widths = (0.0625,) if smoke else (1.0, 0.25)
    batch = 4 if smoke else 50
    images_train, images_test, big = (40, 20, 20) if smoke else (50000, 10000, 500)
    shape = (3, 32, 32)
    result = {"versions": versions(device), "smoke": smoke, "tf32": tf32, "complete": False,
              "rows": []}

    def row(name, mine, ref, **extra):
        entry = {"case": name, "tinyproj": mine, "torch": ref, **extra}
        if mine and ref:
            entry["ratio"] = mine["median_s"] / ref["median_s"]
        result["rows"].append(entry)
        ratio = f"{entry['ratio']:.2f}×" if "ratio" in entry else "-"
        print(f"{name:<38} tinyproj {mine['median_s'] * 1e3 if mine else float('nan'):9.2f} ms"
              f"   torch {ref['median_s'] * 1e3 if ref else float('nan'):9.2f} ms   {ratio}",
              flush=True)
        if out is not None:
            write_json(out, result)

    for width in widths:
        model, step = tinyproj_step(lambda rng: models.bc_cifar10(width=width, rng=rng),
                                    batch, shape)
        mine = timed(step, sync, warmup, repeats)
        bounds = list(clipping.clip_bounds(model, 0.5).values())
        if device == "gpu":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        tmodel = to_torch(model, torch_device)
        strict = timed(torch_step(tmodel, bounds, batch, shape, torch_device), sync, warmup,
                       repeats)
        row(f"step w{width:g} b{batch}" + (" TF32" if tf32 else ""), mine, strict,
            width=width, batch=batch)
        graph = tinyproj_replayed_step(lambda rng: models.bc_cifar10(width=width, rng=rng),
                                       batch, shape)
        replayed = timed(graph, sync, max(warmup, 3), repeats)
        row(f"step w{width:g} b{batch} replayed" + (" TF32" if tf32 else ""), replayed, strict,
            width=width, batch=batch, graph=graph.kind, replays=graph.replays,
            graph_fallbacks=graph.reasons, graph_pool_bytes=graph.pool_bytes())
        if "epoch" not in skip:
            tmodel = to_torch(model, torch_device)
            ev_mine = timed(tinyproj_forward(model, images_test, big, shape, False), sync, 1,
                            max(1, repeats // 5))
            ev_ref = timed(torch_forward(tmodel, images_test, big, shape, torch_device, False),
                           sync, 1, max(1, repeats // 5))
            steps = images_train // batch
            row(f"epoch w{width:g} ({steps} steps + eval)",
                {"median_s": steps * mine["median_s"] + ev_mine["median_s"], "projected": True,
                 "replayed_median_s": steps * replayed["median_s"] + ev_mine["median_s"]},
                {"median_s": steps * strict["median_s"] + ev_ref["median_s"],
                 "projected": True}, width=width)
            if "draw" not in skip:
                re_mine = timed(tinyproj_forward(model, images_train, big, shape, True), sync,
                                1, 1)
                re_ref = timed(torch_forward(tmodel, images_train, big, shape, torch_device,
                                             True), sync, 1, 1)
                row(f"sweep draw w{width:g} (BN over {images_train} + score)",
                    {"median_s": re_mine["median_s"] + ev_mine["median_s"]},
                    {"median_s": re_ref["median_s"] + ev_ref["median_s"]}, width=width)
    if "alexnet" not in skip:
        side, ab, aw = (67, 2, 0.0625) if smoke else (227, 512, 1.0)
        model, step = tinyproj_step(
            lambda rng: models.alexnet_bn(1000, input_size=side, width=aw, rng=rng), ab,
            (3, side, side), optimizer="sgd")
        mine = timed(step, sync, 1, max(1, repeats // 5))
        bounds = list(clipping.clip_bounds(model, 0.5).values())
        tmodel = to_torch(model, torch_device)
        ref = timed(torch_step(tmodel, bounds, ab, (3, side, side), torch_device, "sgd"), sync,
                    1, max(1, repeats // 5))
        row(f"alexnet_bn step b{ab} {side}px", mine, ref, batch=ab)
    if "trajectory" not in skip:
        result["trajectory"] = trajectory(device, torch_device, 3 if smoke else 20,
                                          0.0625 if smoke else 0.25, batch, sync)
    result["peak_memory"] = peak_memory(device)
    result["complete"] = True
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=tuple(BACKENDS), default="gpu",
                   help="gpu: CuPy and PyTorch on CUDA; cpu: NumPy; standin: the CPU stand-in "
                        "for CuPy (checks the device code path without a GPU)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--skip", default="",
                   help="comma-separated: epoch, draw, alexnet, trajectory")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 matrix products in both frameworks (default strict float32)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    repeats, warmup = (1, 1) if args.smoke else (args.repeats, args.warmup)
    out = Path(args.out)
    if out.exists():
        print(f"error: --out {out} exists; give a new file", file=sys.stderr)
        return 2
    result = run(args.device, args.smoke, repeats, warmup,
                 skip={s.strip() for s in args.skip.split(",") if s.strip()}, tf32=args.tf32,
                 out=out)
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
