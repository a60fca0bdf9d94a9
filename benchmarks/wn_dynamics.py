"""Walking Noise's learning dynamics in the authors' regime: MNIST ``mlp_tfc``, large σ.

Walking Noise reports two things about training *with* noise (docs/papers.md, "Learning
dynamics"): under additive noise the weights grow (a larger signal beats noise of fixed σ),
and multiplicative noise can make a network binarize its own weights. The authors train at
the points of their grids up to σ = 1e8 (additive, MNIST) and 1e10–1e16 (multiplicative,
"MAX" runs at 1e10) for 100 epochs (MNIST MLP). This script trains one network per
(noise, σ) with the noise at one site and records, per epoch, the clean and noisy test
accuracy and the measures of ``tinyproj.walking_noise.dynamics`` for every weight layer:
mean |w| (growth), Sarle's bimodality and the share of weights within 10 % of the layer's
max |w| (self-binarization), plus the |w|/max|w| histograms at the start and the end.

    .venv/bin/python benchmarks/wn_dynamics.py --out /work/runs-dynamics --epochs 30
    .venv/bin/python benchmarks/wn_dynamics.py --out /work/runs-dynamics --summarize \\
        --results results/wn-dynamics-mnist

Each run is a file ``OUT/<name>.json`` written atomically when the run ends; a run whose file
exists is skipped, so a stopped experiment continues where it was (``--runs`` picks some).
``--summarize`` reads the run files and writes ``summary.csv`` (one row per run and layer),
``dynamics.json`` (the per-epoch series) and ``dynamics.png`` into ``--results``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:                       # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402  (host-side histograms)

from tinyproj import backend  # noqa: E402
from tinyproj.errors import UserError  # noqa: E402
from tinyproj.runs.config import TrainConfig  # noqa: E402
from tinyproj.runs.files import atomic_write_text  # noqa: E402
from tinyproj.runs.training import build_model, train  # noqa: E402
from tinyproj.walking_noise import dynamics as dyn  # noqa: E402
from tinyproj.walking_noise.noisy_training import LEGACY_SETUP, SETUP, train_noisy  # noqa: E402

SITE = "fc2"
"""The noisy site: the output of the middle linear layer (fc1 and fc2 feed it, fc3 and fc4
read it), so both the layers before and after the noise can be watched."""

RUNS = {
    # name: (noise kind, σ, batch norm); kind None = the clean baseline (no noise anywhere)
    "clean": (None, 0.0, False),
    "add-1e0": ("additive", 1e0, False),
    "add-1e2": ("additive", 1e2, False),
    "add-1e4": ("additive", 1e4, False),
    "add-1e8": ("additive", 1e8, False),
    "mul-1e0": ("multiplicative", 1e0, False),
    "mul-1e2": ("multiplicative", 1e2, False),
    "mul-1e10": ("multiplicative", 1e10, False),
    "clean-bn": (None, 0.0, True),
    "add-1e10-bn": ("additive", 1e10, True),
    "mul-1e10-bn": ("multiplicative", 1e10, True),
}
"""The authors' grid points used here: additive 1e0…1e8 (their MNIST grid ends at 1e8),
multiplicative 1e0, 1e2 and 1e10, and their "MAX" runs (σ = 1e10, the TFC *with* batch norm,
noise at one site), each against a clean network of the same kind."""


AUTHORS = {"init": "torch", "bias": "true"}
"""The authors' model settings: PyTorch's default initialisation, a bias in every layer."""


def authors_settings() -> dict:
    """The :data:`AUTHORS` settings this checkout's TrainConfig knows (older ones: none)."""
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in AUTHORS.items() if k in names}


def build(bn: bool, seed: int, settings: dict):
    """The MNIST ``mlp_tfc`` with ``settings`` (init, bias), initialised from ``seed``."""
    cfg = TrainConfig(model="mlp_tfc", bn=bn, **settings)
    return build_model(cfg, (1, 28, 28), 10, backend.make_rng(seed))


def _layers(model, bins: int) -> dict:
    return {layer: dyn.magnitude_histogram(w, bins) for layer, w in
            dyn.layer_weights(model).items()}


def _signed(model, bins: int = 20) -> dict:
    """Per layer, the shares of w / max|w| in ``bins`` equal bins over [−1, 1] (the sign too:
    a one-sided layer and a ±a layer have the same magnitude histogram)."""
    out = {}
    for layer, w in dyn.layer_weights(model).items():
        v = np.asarray(backend.to_numpy(w), dtype=np.float64).ravel()
        top = float(np.abs(v).max()) or 1.0
        counts, _ = np.histogram(v / top, bins=bins, range=(-1.0, 1.0))
        out[layer] = [round(float(c) / v.size, 5) for c in counts]
    return out


def _compact(row: dict) -> dict:
    keep = ("epoch", "loss", "train_accuracy", "test_accuracy", "test_accuracy_noisy", "lr",
            "seconds", "weights", "binarization")
    return {k: row.get(k) for k in keep}


def run_one(name: str, train_src, test_src, epochs: int, seed: int, settings: dict,
            bins: int = 10, log=print, setup: str = "authors") -> dict:
    """Train run ``name`` of :data:`RUNS`; returns its record (config, rows, histograms).

    settings: the model's TrainConfig settings (:func:`authors_settings`). setup: the
    schedule's set-up ("authors": cosine per epoch; "legacy": cosine per minibatch, as the
    committed results/wn-dynamics-mnist runs); the initial weights always come from settings.
    """
    kind, sigma, bn = RUNS[name]
    model = build(bn, seed, settings)
    start_hist, start_signed = _layers(model, bins), _signed(model)
    t0 = time.time()
    status = "finished"
    try:
        if kind is None:
            rows = _train_clean(model, train_src, test_src, epochs, seed, setup)
        else:
            _, rows = train_noisy(model, train_src, f"{kind}:sigma={sigma:g}", sites=[SITE],
                                  epochs=epochs, seed=seed, test_source=test_src, bn=bn,
                                  setup=setup)
    except FloatingPointError as err:           # a non-finite loss: recorded, not hidden
        rows, status = [], f"diverged: {err}"
    seconds = time.time() - t0
    log(f"{name}: {status} in {seconds:.0f} s")
    return {"name": name, "noise": kind, "sigma": sigma, "bn": bn, "site": SITE,
            "epochs": epochs, "seed": seed, "model_settings": settings, "setup": setup,
            "train_examples": len(train_src), "test_examples": len(test_src),
            "status": status, "seconds": round(seconds, 1),
            "rows": [_compact(r) for r in rows],
            "histograms": {"start": start_hist, "end": _layers(model, bins)},
            "signed_histograms": {"start": start_signed, "end": _signed(model)}}


def _train_clean(model, train_src, test_src, epochs: int, seed: int,
                 setup: str = "authors") -> list:
    """The clean baseline through THE loop with Walking Noise's set-up (no noise)."""
    def on_eval(m, row):
        row.update(loss=row["train_loss"],
                   train_accuracy=None if row["train_error"] is None else
                   1 - row["train_error"])
        row["test_accuracy"] = 1.0 - row["test_error"]["none"]
        row["test_accuracy_noisy"] = row["test_accuracy"]
        row.update(dyn.dynamics_row(m))
        row["seconds"] = round(row["train_seconds"] - on_eval.last, 3)
        on_eval.last = row["train_seconds"]

    on_eval.last = 0.0
    bn = any(name.startswith("bn") for name in model.state_dict())
    recipe = LEGACY_SETUP if setup == "legacy" else SETUP
    cfg = TrainConfig(**dict(recipe, model="mlp_tfc", bn=bn, dataset="mnist", epochs=epochs,
                             seed=seed, eval_batch_size=500))
    _, rows = train(cfg, progress=False, log=lambda text: None,
                    data=(train_src, None, test_src, tuple(train_src.input_shape), 10),
                    model=model, on_eval=on_eval, eval_at_start=True)
    return rows


# --- summary ------------------------------------------------------------------------------
def summary_rows(records: list) -> list:
    """One dict per (run, layer): accuracy at the end, growth of mean |w|, binarization.

    ``vs_clean``: mean |w| at the end over that of the clean run with the same batch norm and
    seed (clean training grows the weights too, so growth alone does not show the noise's part).
    """
    clean_end = {(rec["bn"], rec.get("seed", 0)): rec["rows"][-1]["weights"]
                 for rec in records if rec.get("noise") is None and rec["rows"]}
    out = []
    for rec in records:
        rows = rec["rows"]
        if not rows:
            out.append({"run": rec["name"], "layer": "", "status": rec["status"]})
            continue
        first, last = rows[0], rows[-1]
        grow = dyn.growth(first["weights"], last["weights"])
        clean = clean_end.get((rec["bn"], rec.get("seed", 0)))
        for layer in last["weights"]:
            b = last["binarization"][layer]
            near_zero = rec.get("histograms", {}).get("end", {}).get(layer, [None])[0]
            out.append({
                "run": rec["name"], "seed": rec.get("seed", 0),
                "noise": rec["noise"] or "none", "sigma": rec["sigma"],
                "bn": rec["bn"], "site": rec["site"] if rec["noise"] else "",
                "epochs": rec["epochs"], "layer": layer,
                "test_acc_clean": round(last["test_accuracy"], 4),
                "test_acc_noisy": round(last["test_accuracy_noisy"], 4),
                "mean_abs_start": round(first["weights"][layer]["mean_abs"], 5),
                "mean_abs_end": round(last["weights"][layer]["mean_abs"], 5),
                "growth": round(grow[layer], 3),
                "vs_clean": None if clean is None else
                round(last["weights"][layer]["mean_abs"] / clean[layer]["mean_abs"], 3),
                "max_abs_end": round(last["weights"][layer]["max_abs"], 5),
                "bimodality_start": round(first["binarization"][layer]["bimodality"], 3),
                "bimodality_end": None if b["bimodality"] is None else round(b["bimodality"], 3),
                "share_near_max_end": round(b["share_near_max"], 4),
                "share_near_zero_end": None if near_zero is None else round(near_zero, 4),
                "binarized": b["bimodality"] is not None and
                b["bimodality"] > dyn.BINARIZED_BIMODALITY and near_zero is not None and
                near_zero < dyn.BINARIZED_NEAR_ZERO,
                "status": rec["status"]})
    return out


TABLE_KEYS = ("test_acc_clean", "test_acc_noisy", "growth", "vs_clean", "bimodality_end",
              "share_near_max_end", "share_near_zero_end")


def seed_table(rows: list) -> list:
    """Per (run, layer) over the seeds: the mean, min and max of :data:`TABLE_KEYS`."""
    groups = {}
    for r in rows:
        if r.get("layer"):
            groups.setdefault((r["run"], r["layer"]), []).append(r)
    out = []
    for (run, layer), group in groups.items():
        row = {"run": run, "layer": layer, "seeds": len(group),
               "binarized": sum(bool(r["binarized"]) for r in group)}
        for key in TABLE_KEYS:
            values = [r[key] for r in group if r[key] is not None]
            if values:
                row.update({key: round(sum(values) / len(values), 4),
                            f"{key}_min": min(values), f"{key}_max": max(values)})
        out.append(row)
    return out


def _key(rec: dict) -> str:
    seed = rec.get("seed", 0)
    return rec["name"] if seed == 0 else f"{rec['name']}/seed{seed}"


def series(records: list) -> dict:
    """Per run (``name``, or ``name/seedS`` for seeds other than 0), per-epoch lists:
    accuracies, per layer mean |w|, bimodality and share near max; start/end histograms."""
    out = {}
    for rec in records:
        rows = rec["rows"]
        layers = list(rows[0]["weights"]) if rows else []
        out[_key(rec)] = {"seed": rec.get("seed", 0),
            "noise": rec["noise"], "sigma": rec["sigma"], "bn": rec["bn"],
            "status": rec["status"], "seconds": rec["seconds"],
            "epoch": [r["epoch"] for r in rows],
            "test_acc_clean": [round(r["test_accuracy"], 4) for r in rows],
            "test_acc_noisy": [round(r["test_accuracy_noisy"], 4) for r in rows],
            "mean_abs": {k: [round(r["weights"][k]["mean_abs"], 5) for r in rows]
                         for k in layers},
            "bimodality": {k: [None if r["binarization"][k]["bimodality"] is None else
                               round(r["binarization"][k]["bimodality"], 4) for r in rows]
                           for k in layers},
            "share_near_max": {k: [round(r["binarization"][k]["share_near_max"], 4)
                                   for r in rows] for k in layers},
            "histograms": rec["histograms"],
            "signed_histograms": rec.get("signed_histograms")}
    return out


def plot(data: dict, path: Path) -> None:
    """dynamics.png: mean |w| and bimodality of fc1/fc2 per epoch, accuracy, end histograms."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    names = [n for n in data if data[n]["epoch"] and "/" not in n]      # seed 0
    cmap = plt.get_cmap("tab20")
    colors = {n: cmap(i % 20) for i, n in enumerate(names)}
    layers = [k for k in (list(data[names[0]]["mean_abs"]) if names else [])
              if all(k in data[n]["mean_abs"] for n in names)][:2]    # fc1, fc2: the noise's feed
    for col, layer in enumerate(layers):
        ax = axes[0, col]
        for n in names:
            ax.plot(data[n]["epoch"], data[n]["mean_abs"][layer], color=colors[n], label=n)
        ax.set(title=f"{layer}: mean |w| per epoch", xlabel="epoch", yscale="log")
        ax = axes[1, col]
        for n in names:
            ax.plot(data[n]["epoch"], data[n]["bimodality"][layer], color=colors[n])
        ax.axhline(5 / 9, color="gray", ls=":", lw=1)
        ax.axhline(dyn.BINARIZED_BIMODALITY, color="k", ls="--", lw=1)
        ax.set(title=f"{layer}: bimodality b (dotted: uniform 5/9; dashed: 0.7)",
               xlabel="epoch", ylim=(0, 1))
    ax = axes[0, 2]
    for n in names:
        ax.plot(data[n]["epoch"], data[n]["test_acc_noisy"], color=colors[n])
    ax.set(title="test accuracy with the training noise on", xlabel="epoch", ylim=(0, 1))
    ax = axes[1, 2]
    for n in names:
        h = data[n]["histograms"]["end"].get(SITE)
        if h is None:
            continue
        ax.plot([(k + 0.5) / len(h) for k in range(len(h))], h, color=colors[n], marker=".")
    ax.set(title=f"{SITE} at the end: share of |w|/max|w| per bin", xlabel="|w| / max |w|")
    axes[0, 2].legend([plt.Line2D([], [], color=colors[n]) for n in names], names, fontsize=7,
                      ncol=2)
    fig.suptitle(f"Walking Noise learning dynamics, MNIST mlp_tfc, noise at site {SITE}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def _write_csv(path: Path, rows: list) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def summarize(outs, results: Path, log=print) -> list:
    """Read the run files of the folder(s) ``outs`` (one per seed) and write into ``results``:
    summary.csv (per run, seed and layer), table.csv (over seeds), dynamics.json, dynamics.png.
    """
    outs = [Path(outs)] if isinstance(outs, (str, Path)) else [Path(o) for o in outs]
    records = [json.loads((out / f"{n}.json").read_text()) for out in outs for n in RUNS
               if (out / f"{n}.json").exists()]
    if not records:
        raise UserError(f"no finished runs in {', '.join(map(str, outs))}; run the experiment "
                        "first", flag="--out")
    results.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(records)
    _write_csv(results / "summary.csv", rows)
    _write_csv(results / "table.csv", seed_table(rows))
    data = series(records)
    atomic_write_text(results / "dynamics.json", "{\n" + ",\n".join(      # one line per run
        f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in data.items())
        + "\n}\n")
    plot(data, results / "dynamics.png")
    log(f"{len(records)} runs summarized in {results}")
    return rows


def _check_setup(out: Path, names, setup: str) -> None:
    """Refuse a folder whose finished runs were trained with another set-up (before any data
    is loaded): skipping them as "done" would mix two schedules in one summary."""
    for name in names:
        path = out / f"{name}.json"
        if path.exists():
            # records written before set-ups had names were trained with the legacy schedule
            done = json.loads(path.read_text()).get("setup", "legacy")
            if done != setup:
                raise UserError(f"{path} was trained with --setup {done}, not {setup}; give "
                                f"another --out or --setup {done}", flag="--setup")


def run_script(main) -> None:
    """Run ``main()`` as a script: exit with its status, or print a UserError and exit with 2."""
    try:
        sys.exit(main())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the run files (outside the repo); "
                   "with --summarize, several folders separated by commas (one per seed)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (authors: 100)")
    p.add_argument("--runs", default="all", help=f"comma-separated names from: {', '.join(RUNS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of each run's generator")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on the first N of MNIST's 60,000 images")
    p.add_argument("--glorot", action="store_true", help="tinyproj's Glorot init and "
                   "biases as --bias auto (default: the authors' PyTorch init, every bias)")
    p.add_argument("--setup", default="authors", choices=("authors", "legacy"),
                   help="the schedule: authors = cosine per epoch (default); legacy = cosine "
                   "per minibatch, as the committed results/wn-dynamics-mnist runs")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/")
    p.add_argument("--summarize", action="store_true", help="only summarize finished runs")
    p.add_argument("--results", default=str(ROOT / "results" / "wn-dynamics-mnist"),
                   help="folder for summary.csv, dynamics.json, dynamics.png")
    a = p.parse_args(argv)
    outs, results = [Path(o) for o in a.out.split(",") if o.strip()], Path(a.results)
    names = list(RUNS) if a.runs == "all" else [n.strip() for n in a.runs.split(",") if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise UserError(f"unknown runs {unknown}; choose from {', '.join(RUNS)}", flag="--runs")
    if a.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {a.epochs}", flag="--epochs")
    if a.summarize:
        summarize(outs, results)
        return 0
    if len(outs) != 1:
        raise UserError("training writes into one --out folder (several only with "
                        "--summarize)", flag="--out")
    out = outs[0]
    _check_setup(out, names, a.setup)
    settings = {} if a.glorot else authors_settings()
    from tinyproj.data import load_dataset
    from tinyproj.data.sources import ArraySource
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("mnist", data_dir=a.data_dir, train_subset=a.train_subset,
                      download=False)                 # [0, 1] pixels, as the authors
    train_src, test_src = ArraySource(ds.x_train, ds.y_train), ArraySource(ds.x_test, ds.y_test)
    for name in names:
        path = out / f"{name}.json"
        if path.exists():
            print(f"{name}: done before, skipped", flush=True)
            continue
        rec = run_one(name, train_src, test_src, a.epochs, a.seed, settings,
                      log=lambda text: print(text, flush=True), setup=a.setup)
        atomic_write_text(path, json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    run_script(main)
