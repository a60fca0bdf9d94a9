"""The GPU benchmark: tinyproj on CuPy beside PyTorch eager on the same GPU, in one run.

``tinyproj bench --device gpu`` (and ``benchmarks/gpu_bench.py``, which ``gpu_check.sh`` runs)
call :func:`run_both` or :func:`run`. What a leg times (median of ``repeats`` timed calls after
``warmup`` untimed ones; each call ends with a device synchronisation, so a time is the work
done, not the work queued):

* ``step``: one Algorithm-1 step of ``bc_cifar10`` (Sign projection, Adam, clipping, square
  hinge loss) at batch 50, widths 1.0 and 0.25 — tinyproj (the minibatch already on the
  device, ``sync=False`` as the training loop calls it) and PyTorch eager
  (:mod:`torch_ref`, the same network and step);
* ``step ... replayed``: the same step captured once as a CUDA graph and replayed
  (``tinyproj/graphs.py``; the row says ``graph: "cuda"`` when it was, ``"standin"`` on the
  CPU stand-in, ``"eager"`` where it fell back), beside the same PyTorch eager step;
* ``epoch``: the projected time of a 50,000-image epoch (1,000 steps at the measured step
  time) plus the measured evaluation of 10,000 test images (eval-mode forward, batch 500);
* ``training epoch``: one real epoch of the training loop (``runs.training.train``, as
  ``tinyproj train --preset tr-sign-c`` runs it: width 1.0, the data resident on the device,
  the step replayed as a CUDA graph after two eager steps) over 45,000 synthetic CIFAR-sized
  images, with its evaluation — validation (5,000) and test (10,000) images under Te-None,
  Te-Sign and Te-Round, batch norm re-estimated for each — tinyproj only (the projected row
  has PyTorch's step beside it);
* ``draw``: one sweep draw — batch-norm re-estimation over the 50,000 training images
  (train-mode forward without gradients, batch 500) and scoring 10,000 test images;
* ``alexnet``: one AlexNet-BN step at batch 512 on 227×227 synthetic images (SGD, Sign),
  tinyproj and a PyTorch model built layer for layer from tinyproj's (``torch_ref.to_torch``);
* ``trajectory``: the losses of 20 steps from the same initial weights and data at width
  0.25, tinyproj and PyTorch — compared between the strict and the TF32 leg;
* peak device memory of each framework (CuPy's memory pool high-water mark as seen by this
  process; ``torch.cuda.max_memory_allocated``).

Precision: a leg runs in strict float32 or with TF32 allowed on *both* sides
(:func:`tinyproj.backend.set_tf32`, PyTorch's ``allow_tf32`` for matmul and cuDNN), switched
in the running process, so one run measures both. Ratios are tinyproj / PyTorch. The JSON
names the GPU, CUDA, CuPy and PyTorch versions.

``device="cpu"`` runs the same code on NumPy and PyTorch's CPU build, ``device="standin"`` on
the CPU stand-in for CuPy (device arrays, the step recorded and replayed): with ``smoke``
(tiny sizes, one repeat) CPU CI checks that the benchmark works; those times mean nothing.
With ``out``, the JSON is rewritten atomically after every row (``"complete": false`` until
the end), so a run stopped by a time limit keeps the rows it measured.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from .. import algorithm1, backend, clipping, models, optim
from .. import functional as F
from ..tensor import no_grad

# --device: the array backend each runs tinyproj on (PyTorch runs on CUDA for "gpu" only)
BACKENDS = {"gpu": "cupy", "cpu": "numpy", "standin": "standin"}
RESULT_KIND = "tinyproj bench --device"      # marks a result file this benchmark wrote


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
    """``(model, step)``: one Algorithm-1 step (Sign, clipping; Adam with the square hinge
    loss, or SGD with cross-entropy) on a fixed random minibatch already on the device."""
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
    two eager warm-up calls, then captured once and replayed (CuPy; recorded and replayed on
    the stand-in); eager on NumPy."""
    from .. import graphs
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


# -- the run -------------------------------------------------------------------------------
def versions(device: str) -> dict:
    """What the numbers were measured on: the GPU by name, and every version that matters."""
    import torch
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "device": device}
    if device == "gpu":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info.update(gpu=props["name"].decode(), cupy=cupy.__version__,
                    cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                    cuda_driver=cupy.cuda.runtime.driverGetVersion())
    else:
        info["gpu"] = None                       # measured without one: the times mean nothing
    return info


def peak_memory(device: str) -> dict:
    """Both frameworks' device memory at the end of a leg (empty off the GPU).

    tinyproj_pool_bytes: what CuPy's default pool holds, freed blocks included; the pool keeps
    them for reuse and is never emptied here, so this is its high-water mark (a CUDA graph's
    private pool is not in it: the replayed rows give theirs as graph_pool_bytes). PyTorch's
    caching allocator likewise: torch_max_reserved_bytes is its high-water mark of memory
    held, the like of the pool's figure; torch_max_allocated_bytes, of memory in tensors."""
    if device != "gpu":
        return {}
    import cupy
    import torch
    return {"tinyproj_pool_bytes": int(cupy.get_default_memory_pool().total_bytes()),
            "torch_max_reserved_bytes": int(torch.cuda.max_memory_reserved()),
            "torch_max_allocated_bytes": int(torch.cuda.max_memory_allocated())}


def set_precision(device: str, tf32: bool) -> bool:
    """Strict float32 (``tf32=False``) or TF32 allowed, on both sides at once; returns whether
    tinyproj's float32 products now use TF32 (never on NumPy or the stand-in)."""
    effective = backend.set_tf32(tf32)
    if device == "gpu":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    return effective


def trajectory(torch_device, steps: int, width: float, batch: int, sync) -> dict:
    """Losses of ``steps`` steps from the same weights on the same fixed minibatch."""
    import torch

    from .torch_ref import SignStep, to_torch
    rng = backend.make_rng(5)
    model = models.bc_cifar10(width=width, rng=rng)
    model.train()
    tmodel = to_torch(model, torch_device)            # the same initial weights
    bounds = clipping.clip_bounds(model, 0.5)
    opt = optim.Adam(model.parameters(), lr=0.003)
    host = np.random.default_rng(5)
    x_host = host.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y_host = np.arange(batch) % 10
    x, y = backend.asarray(x_host), backend.asarray(y_host)
    mine = [float(algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign",
                                        bounds, rng)) for _ in range(steps)]
    tmodel.train()
    tstep = SignStep(tmodel, list(bounds.values()))
    tx, ty = torch.from_numpy(x_host).to(torch_device), torch.from_numpy(y_host).to(torch_device)
    theirs = [float(tstep(tx, ty)) for _ in range(steps)]
    sync()
    return {"width": width, "batch": batch, "tinyproj_losses": mine, "torch_losses": theirs}


def measured_epoch(smoke: bool) -> dict:
    """Seconds of one real training epoch and its evaluation (see the module docstring); the
    synthetic images (data/synthetic.py, drawn in float32) are made before the clock starts. The
    progress bar is shown (not in a smoke run), so a run stopped by a time limit still shows
    how many steps it reached."""
    from ..data.sources import ArraySource
    from ..data.synthetic import synthetic_classification
    from ..runs.config import make_config
    from ..runs.training import train
    n_train, n_val, n_test, width = (100, 20, 40, 0.0625) if smoke else (45000, 5000, 10000, 1.0)
    x, y = synthetic_classification(n_train + n_val + n_test, seed=1, dtype=np.float32)
    parts = np.cumsum([0, n_train, n_val, n_test])
    train_src, val_src, test_src = (ArraySource(x[a:b], y[a:b]) for a, b in zip(parts, parts[1:]))
    small = dict(bn_batches=1, eval_batch_size=50) if smoke else {}
    cfg = make_config("tr-sign-c", width=width, epochs=1, dataset="synthetic", val_size=0,
                      **small)
    lines = []
    start = time.perf_counter()
    _, rows = train(cfg, progress=not smoke, log=lines.append, graph="auto",
                    data=(train_src, val_src, test_src, (3, 32, 32), 10))
    wall = time.perf_counter() - start
    row = rows[-1]
    return {"median_s": row["train_seconds"] + row["eval_seconds"],
            "train_s": row["train_seconds"], "eval_s": row["eval_seconds"], "wall_s": wall,
            "steps": row["step"], "width": width, "images": n_train, "log": lines}


def write_json(out: Path, result: dict) -> None:
    """Write ``result`` to ``out`` whole or not at all (a temporary file, then a rename)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)


def run(device: str, smoke: bool, repeats: int, warmup: int, skip=(), tf32: bool = False,
        batch: int = 50, on_row=None, log=print) -> dict:
    """One leg: every row in strict float32 (``tf32=False``) or with TF32 allowed on both
    sides. ``on_row(leg)`` is called after each row with the leg so far; ``skip``: any of
    step (the step rows, and with them the projected epoch and the draw), epoch, draw,
    training (the real epoch), alexnet, trajectory."""
    from .torch_ref import to_torch, torch_forward, torch_step
    backend.use(BACKENDS[device])
    torch_device = "cuda" if device == "gpu" else "cpu"
    sync = make_sync(device)
    widths = (0.0625,) if smoke else (1.0, 0.25)
    batch = 4 if smoke else batch
    images_train, images_test, big = (40, 20, 20) if smoke else (50000, 10000, 500)
    shape = (3, 32, 32)
    leg = {"tf32": tf32, "tf32_in_effect": set_precision(device, tf32), "rows": []}
    mark = " TF32" if tf32 else ""

    def row(kind, name, mine, ref, **extra):
        entry = {"kind": kind, "case": name, "tinyproj": mine, "torch": ref, **extra}
        theirs = "torch         -  " if ref is None else f"torch {ref['median_s'] * 1e3:9.2f} ms"
        if ref is not None:
            entry["ratio"] = mine["median_s"] / ref["median_s"]
            theirs += f"   {entry['ratio']:.2f}×"
        leg["rows"].append(entry)
        log(f"{name:<40} tinyproj {mine['median_s'] * 1e3:9.2f} ms   {theirs}")
        if on_row is not None:
            on_row(leg)

    for width in () if "step" in skip else widths:
        def build(rng):
            return models.bc_cifar10(width=width, rng=rng)
        model, step = tinyproj_step(build, batch, shape)
        mine = timed(step, sync, warmup, repeats)
        bounds = list(clipping.clip_bounds(model, 0.5).values())
        tmodel = to_torch(model, torch_device)
        theirs = timed(torch_step(tmodel, bounds, batch, shape, torch_device), sync, warmup,
                       repeats)
        row("step", f"step w{width:g} b{batch}{mark}", mine, theirs, width=width, batch=batch)
        graph = tinyproj_replayed_step(build, batch, shape)
        replayed = timed(graph, sync, max(warmup, 3), repeats)
        row("step_replayed", f"step w{width:g} b{batch} replayed{mark}", replayed, theirs,
            width=width, batch=batch, graph=graph.kind, replays=graph.replays,
            graph_fallbacks=graph.reasons, graph_pool_bytes=graph.pool_bytes())
        if "epoch" not in skip:
            tmodel = to_torch(model, torch_device)
            ev_mine = timed(tinyproj_forward(model, images_test, big, shape, False), sync, 1,
                            max(1, repeats // 5))
            ev_ref = timed(torch_forward(tmodel, images_test, big, shape, torch_device, False),
                           sync, 1, max(1, repeats // 5))
            steps = images_train // batch
            row("epoch_projected", f"epoch w{width:g} ({steps} steps + eval){mark}",
                {"median_s": steps * mine["median_s"] + ev_mine["median_s"], "projected": True,
                 "replayed_median_s": steps * replayed["median_s"] + ev_mine["median_s"]},
                {"median_s": steps * theirs["median_s"] + ev_ref["median_s"],
                 "projected": True}, width=width)
            if "draw" not in skip:
                re_mine = timed(tinyproj_forward(model, images_train, big, shape, True), sync,
                                1, 1)
                re_ref = timed(torch_forward(tmodel, images_train, big, shape, torch_device,
                                             True), sync, 1, 1)
                row("draw", f"sweep draw w{width:g} (BN over {images_train} + score){mark}",
                    {"median_s": re_mine["median_s"] + ev_mine["median_s"]},
                    {"median_s": re_ref["median_s"] + ev_ref["median_s"]}, width=width)
    if "training" not in skip:
        epoch = measured_epoch(smoke)
        row("training_epoch",
            f"training epoch w{epoch['width']:g} ({epoch['images']} images + eval){mark}",
            epoch, None, width=epoch["width"],
            graph_fallbacks=[line for line in epoch["log"] if line.startswith("CUDA graph")])
    if "alexnet" not in skip:
        side, ab, aw = (67, 2, 0.0625) if smoke else (227, 512, 1.0)
        model, step = tinyproj_step(
            lambda rng: models.alexnet_bn(1000, input_size=side, width=aw, rng=rng), ab,
            (3, side, side), optimizer="sgd")
        mine = timed(step, sync, 1, max(1, repeats // 5))
        bounds = list(clipping.clip_bounds(model, 0.5).values())
        tmodel = to_torch(model, torch_device)
        theirs = timed(torch_step(tmodel, bounds, ab, (3, side, side), torch_device, "sgd"),
                       sync, 1, max(1, repeats // 5))
        row("alexnet", f"alexnet_bn step b{ab} {side}px{mark}", mine, theirs, batch=ab,
            width=aw)
    if "trajectory" not in skip:
        leg["trajectory"] = trajectory(torch_device, 3 if smoke else 20,
                                       0.0625 if smoke else 0.25, batch, sync)
    leg["peak_memory"] = peak_memory(device)
    return leg


def new_result(device: str, smoke: bool, repeats: int) -> dict:
    """A result with no leg measured yet: what both ``run_both`` and one-leg callers fill."""
    return {"kind": RESULT_KIND, "versions": versions(device), "smoke": smoke,
            "repeats": repeats, "complete": False, "strict": None, "tf32": None}


def run_both(device: str, smoke: bool, repeats: int, warmup: int, skip=(), batch: int = 50,
             out=None, log=print) -> dict:
    """Both legs in one run — strict float32, then TF32 on both sides — as one result:
    ``{"kind", "versions", "smoke", "complete", "strict": leg, "tf32": leg}``. With ``out``,
    the result so far is written after every row; strict float32 is restored at the end, and
    the result gets issue 12's ``targets`` and the ``tf32_effect`` (bench/targets.py)."""
    result = new_result(device, smoke, repeats)
    try:
        for name, tf32 in (("strict", False), ("tf32", True)):
            log("\n" + ("strict float32:" if not tf32 else "TF32 allowed on both sides:" if
                        device == "gpu" else "TF32 allowed on both sides (a no-op off a GPU: "
                        "these rows time strict float32 again):"))

            def save(leg, name=name):
                result[name] = leg
                if out is not None:
                    write_json(out, result)
            save(run(device, smoke, repeats, warmup, skip, tf32=tf32, batch=batch,
                     on_row=save, log=log))
    finally:
        set_precision(device, False)
    from . import targets
    result["targets"] = targets.check(result["strict"])
    result["tf32_effect"] = targets.tf32_effect(result["strict"], result["tf32"])
    log("\nTF32's effect:\n" + targets.format_tf32(result["tf32_effect"]))
    log("\nissue 12's targets (strict float32; the input pipeline: benchmarks/"
        "imagenet_pipeline.py):\n" + targets.format_table(result["targets"]))
    result["complete"] = True
    if out is not None:
        write_json(out, result)
    return result


def is_result_file(path) -> bool:
    """Whether ``path`` holds a result of this benchmark (``"kind"`` is :data:`RESULT_KIND`)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == RESULT_KIND
