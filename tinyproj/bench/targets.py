"""Issue 12's GPU targets, read off a GPU benchmark's rows: measured, limit, met or not.

Each target names the row it reads (by the row's ``kind`` and width, bench/gpu_suite.py):

=====================================================  ===========  =========================
target                                                 limit        row (strict float32 leg)
=====================================================  ===========  =========================
bc_cifar10 step, width 1.0, batch 50 / PyTorch eager   <= 1.5×      step, w1
bc_cifar10 step, width 0.25, replayed / PyTorch eager  <= 1.0×      step_replayed, w0.25
one 50,000-image epoch with its evaluation, width 1.0  <= 10 s      training_epoch, w1 (45,000
                                                                    trained + 15,000 scored)
Table 2's six networks × 500 epochs at that pace       <= 9 GPU-h   the same row, × 3000
AlexNet-BN step, batch 512 / PyTorch eager             <= 2.0×      alexnet
decoding (16 workers, shrunk JPEGs, training crops)    >= 1.2×      pipeline.json (its step
  / what the AlexNet-BN step consumes                               time must be measured)
=====================================================  ===========  =========================

A target whose row is missing (a smoke run, a stopped run) is reported as not measured
(``measured`` None, ``met`` None), never as met. TF32's effect is reported beside them, with
no limit: how much faster each step row got, and how far the 20-step losses moved.
"""
from __future__ import annotations

TABLE2_EPOCHS = 6 * 500          # six networks (Table 2), 500 epochs each

# (name, row kind, width, limit): tinyproj's time over PyTorch's, at most the limit
_RATIOS = (
    ("bc_cifar10 step w1.0 b50 / PyTorch eager", "step", 1.0, 1.5),
    ("bc_cifar10 step w0.25 b50 replayed / PyTorch eager", "step_replayed", 0.25, 1.0),
    ("AlexNet-BN step b512 / PyTorch eager", "alexnet", 1.0, 2.0),
)


def find_row(leg, kind: str, width: float | None = None):
    """The first row of ``leg`` of this ``kind`` (and width), or None."""
    for row in (leg or {}).get("rows", []):
        if row.get("kind") == kind and (width is None or row.get("width") == width):
            return row
    return None


def _target(name, measured, limit, at_most: bool, unit: str, note: str = "") -> dict:
    met = None if measured is None else (measured <= limit if at_most else measured >= limit)
    return {"target": name, "measured": measured, "limit": limit,
            "direction": "<=" if at_most else ">=", "unit": unit, "met": met, "note": note}


def check(strict=None, pipeline=None, epoch_leg=None) -> list:
    """Every target, from the strict-float32 leg (``strict``), the input-pipeline result
    (``pipeline``, benchmarks/imagenet_pipeline.py's JSON) and the leg holding the real
    training epoch (``epoch_leg``, default ``strict``)."""
    targets = []
    for name, kind, width, limit in _RATIOS:
        row = find_row(strict, kind, width)
        targets.append(_target(name, row.get("ratio") if row else None, limit, True, "×"))
    epoch = find_row(epoch_leg or strict, "training_epoch", 1.0)
    seconds = epoch["tinyproj"]["median_s"] if epoch else None
    targets.append(_target("one 50,000-image epoch w1.0 with its evaluation", seconds, 10.0,
                           True, "s"))
    hours = None if seconds is None else seconds * TABLE2_EPOCHS / 3600
    targets.append(_target("Table 2: 6 networks × 500 epochs", hours, 9.0, True, "GPU-h"))
    targets.append(_pipeline_target(pipeline))
    return targets


def _pipeline_target(pipeline) -> dict:
    name = "decoding (most workers, shrunk, training crops) / AlexNet-BN step's need"
    rows = [r for r in (pipeline or {}).get("rows", [])
            if r.get("path") == "DecodePool train transform, shrunk to 256"]
    if not rows:
        return _target(name, None, 1.2, False, "×")
    best = max(rows, key=lambda r: r["workers"])
    measured = best["images_per_s"] / pipeline["needed_images_per_s"]
    note = f"{best['workers']} workers"
    if pipeline.get("step_assumed"):
        return _target(name, None, 1.2, False, "×",
                       note + f"; {measured:.2f}× an assumed step, not a measured one")
    return _target(name, measured, 1.2, False, "×", note)


def tf32_effect(strict, tf32) -> dict:
    """How TF32 changed things: per row kind and width, tinyproj's and PyTorch's time under
    TF32 over strict float32; and the largest change of the 20 training losses."""
    speed = {}
    for row in (tf32 or {}).get("rows", []):
        base = find_row(strict, row.get("kind"), row.get("width"))
        if base is None:
            continue
        key = f"{row['kind']} w{row.get('width', '')}"
        speed[key] = {side: row[side]["median_s"] / base[side]["median_s"]
                      for side in ("tinyproj", "torch") if row.get(side) and base.get(side)}
    losses = {}
    a, b = (leg.get("trajectory") if leg else None for leg in (strict, tf32))
    if a and b:
        for side in ("tinyproj", "torch"):
            pairs = zip(a[f"{side}_losses"], b[f"{side}_losses"])
            losses[side] = max((abs(x - y) for x, y in pairs), default=None)
    return {"time_tf32_over_strict": speed, "largest_loss_change": losses}


def format_table(targets: list) -> str:
    """The targets as text lines: measured against limit, and met, missed or not measured."""
    lines = []
    for t in targets:
        if t["measured"] is None:
            verdict, value = "not measured", "-"
        else:
            verdict = "met" if t["met"] else "MISSED"
            value = f"{t['measured']:.2f} {t['unit']}"
        note = f"  ({t['note']})" if t["note"] else ""
        lines.append(f"  {t['target']:<72} {value:>12}  {t['direction']} {t['limit']:g} "
                     f"{t['unit']:<5} {verdict}{note}")
    return "\n".join(lines)


def format_tf32(effect: dict) -> str:
    """TF32's effect as text lines: time under TF32 over strict per row, and the losses."""
    lines = []
    for key, sides in effect.get("time_tf32_over_strict", {}).items():
        parts = ", ".join(f"{side} ×{ratio:.2f}" for side, ratio in sides.items())
        lines.append(f"  {key:<26} time with TF32 / strict: {parts}")
    for side, change in effect.get("largest_loss_change", {}).items():
        if change is not None:
            lines.append(f"  {side:<26} largest change of the training losses: {change:.2e}")
    if "test_error_change" in effect:
        changes = ", ".join(f"Te-{k.capitalize()} {v:+.2%}"
                            for k, v in effect["test_error_change"].items())
        lines.append(f"  test error, TF32 − strict: {changes}")
    return "\n".join(lines) or "  (no TF32 leg to compare)"
