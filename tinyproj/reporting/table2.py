"""Table 2 of Merolla et al. from run folders: read the runs, build the table, write md/csv.

Table 2 is the test error of every training regime under three test projections (Te-None,
Te-Sign, Te-Round), next to the paper's values. Used by :mod:`tinyproj.reporting.report`
(``tinyproj report``); see its docstring for which errors the table shows (the last
evaluation, and the one at the best validation epoch).

Every error here is one evaluation, so each carries a bar (:mod:`.single_eval`): runs that
differ only in seed share one Markdown row, mean ± std over the seeds (n seeds); a run alone
gets the binomial standard error of its test set, sqrt(p(1 − p)/n_test), labelled "SE".
The CSV keeps one row per run with the SE beside each error (``te_<t>_se``, ``n_test``).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .. import robustness
from ..runs.files import atomic_write_text, read_jsonl
from .errorbars import seed_groups
from .single_eval import SE_NOTE, ErrorBar, format_bar, seed_error, single_error, images_scored

__all__ = ["PAPER_TABLE2", "PAPER_EPOCHS", "TESTS", "TABLE_NOTE", "RunSummary", "read_run",
           "read_sweep", "label_runs", "table2", "table2_markdown", "write_table2",
           "format_value", "describe_setup"]

TESTS = ("none", "sign", "round")
"""The test projections of Table 2's columns (Te-None, Te-Sign, Te-Round)."""

PAPER_TABLE2 = {
    "tr-none-nc": {"none": 11.35, "sign": 14.92, "round": 90.0},
    "tr-none-c": {"none": 9.97, "sign": 11.32, "round": 11.2},
    "tr-sign-c": {"none": 10.64, "sign": 9.95, "round": 10.4},
    "tr-stoch-c": {"none": 8.12, "sign": 8.38, "round": 8.36},
    "tr-power-c": {"none": 10.3, "sign": 10.6, "round": 10.2},
    "tr-stochm-c": {"none": 7.64, "sign": 8.25, "round": 7.88},
}
"""Merolla et al. 2016, Table 2: CIFAR-10 test error (%) after 500 epochs at full width."""

PAPER_EPOCHS = 500

TABLE_NOTE = (
    "Te-X: the test error with every layer's weights replaced by projection X at test time "
    "(None: the full-precision weights; Sign: α·sign(W); Round: α·round(W/α), three values), "
    "batch norm re-estimated on training data for each. The Te-None/Sign/Round columns are "
    "the run's **last** evaluation; the \"@best val\" columns are the evaluation at the epoch "
    "of lowest validation error (the paper's protocol; — when the run has no validation "
    f"set). The paper's values are for {PAPER_EPOCHS} epochs on all of CIFAR-10 at full "
    "width; short or small runs are not expected to reach them. " + SE_NOTE + " Precision "
    "follows the bar.")
"""The legend under Table 2: what each column means and which evaluation it shows."""


# ---------------------------------------------------------------------------
# Reading run folders and sweep files
# ---------------------------------------------------------------------------
@dataclass
class RunSummary:
    """What the report knows about one run folder (no arrays loaded)."""

    folder: Path
    label: str                 # the preset, or the folder name; made unique across runs
    config: dict               # config.json
    rows: list                 # metrics.jsonl rows

    @property
    def last(self) -> dict | None:
        return self.rows[-1] if self.rows else None

    @property
    def preset(self) -> str | None:
        return self.config.get("preset")

    @property
    def chance(self) -> float:
        """Error (%) of guessing: 90 % for 10 classes (ImageNet: 99.9 %)."""
        n = 1000 if self.config.get("dataset") == "imagenet" else 10
        return 100.0 * (1.0 - 1.0 / n)


def read_run(run_dir) -> RunSummary:
    """Read ``config.json`` and ``metrics.jsonl`` of ``run_dir`` (label: folder name for now).

    Raises ``FileNotFoundError`` (``NotADirectoryError`` for a file) with what a run folder
    must hold when it is not one.
    """
    folder = Path(run_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a run folder (give folders made by "
                                 "`tinyproj train --out RUN_DIR`)")
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {folder} does not exist (give folders made by "
                                "`tinyproj train --out RUN_DIR`)")
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{folder} is not a run folder: it has no config.json (a run "
                                "folder, made by `tinyproj train --out RUN_DIR`, holds "
                                "config.json, metrics.jsonl and checkpoint.npz)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg_path} is not valid JSON ({err})") from None
    rows = read_jsonl(folder / "metrics.jsonl")
    return RunSummary(folder, folder.name, config, rows)


def read_sweep(run_dir, name: str) -> list:
    """The rows of ``RUN_DIR/sweeps/<name>.jsonl`` and of its shard files, merged.

    The one place the report reads sweep files; it defers to
    :func:`tinyproj.robustness.merge_sweep_files` (the unsharded file, then the shards
    ``<name>.shard-<i>-of-<n>.jsonl``; one row per ``(layer, level)``; sorted with the
    whole-network rows (``layer`` None) first, then by layer and level; ``[]`` when there
    is no file; ValueError when the files mix sweeps made with different settings).
    """
    return robustness.merge_sweep_files(run_dir, name)


def label_runs(runs: list) -> None:
    """Label each run by its preset (else folder name); repeated labels get the folder."""
    for run in runs:
        run.label = run.preset or run.folder.name
    counts = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    for run in runs:
        if counts[run.label] > 1 and run.label != run.folder.name:
            run.label = f"{run.label} ({run.folder.name})"
    seen = {}
    for run in runs:                      # still equal (same folder name twice): number them
        n = seen[run.label] = seen.get(run.label, 0) + 1
        if n > 1:
            run.label = f"{run.label} #{n}"


# ---------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------
def _pct(value):
    return None if value is None else 100.0 * float(value)


def table2(runs: list) -> list:
    """One dict per run: its setup, Te-None/Sign/Round (%) last and at best validation with
    each one's binomial SE (``te_<t>_se``, ``best_val_te_<t>_se``, over ``n_test`` images),
    its seed group (``seed_group``: runs that differ only in seed share it), and the paper's
    values when the run's preset is one of Table 2's."""
    group_of = {r.label: name for name, members in seed_groups(runs).items() for r in members}
    table = []
    for run in runs:
        cfg, last = run.config, run.last or {}
        n_test = images_scored(last, cfg) if last else None
        row = {
            "run": run.label, "preset": run.preset or "", "folder": str(run.folder),
            "model": cfg.get("model"), "width": cfg.get("width"),
            "dataset": cfg.get("dataset"), "train_images": cfg.get("train_subset"),
            "epochs_trained": last.get("epoch"), "epochs_planned": cfg.get("epochs"),
            "steps": last.get("step"), "seed": cfg.get("seed"),
            "seed_group": group_of.get(run.label, run.label), "n_test": n_test,
        }
        for t in TESTS:
            e = single_error(last.get("test_error", {}).get(t), n_test)
            row[f"te_{t}"], row[f"te_{t}_se"] = e.value, e.bar
        row["best_val_epoch"] = last.get("best_val_epoch")
        for t in TESTS:
            e = single_error(last.get("test_error_at_best_val", {}).get(t), n_test)
            row[f"best_val_te_{t}"], row[f"best_val_te_{t}_se"] = e.value, e.bar
        paper = PAPER_TABLE2.get((run.preset or "").lower(), {})
        for t in TESTS:
            row[f"paper_te_{t}"] = paper.get(t)
        table.append(row)
    return table


def format_value(value, digits=2):
    """A table cell: floats with ``digits`` decimals, — for a missing value (None)."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def describe_setup(row) -> str:
    """The setup of a Table-2 row in words: model, width, dataset, training images."""
    width = row["width"]
    if isinstance(width, (int, float)) and width != 1:
        frac = 1 / width
        width_txt = f"width 1/{frac:g}" if abs(frac - round(frac)) < 1e-9 else f"width {width:g}"
    else:
        width_txt = "full width"
    images = row["train_images"]
    images_txt = f"{images} train images" if images else "all train images"
    return f"{row['model']}, {width_txt}, {row['dataset']}, {images_txt}"


def _bar(rows: list, key: str) -> str:
    """The cell of column ``key`` for one run (± its SE) or a seed group (± std over seeds)."""
    if len(rows) == 1:
        r = rows[0]
        return format_bar(ErrorBar(r[key], r.get(f"{key}_se"), "SE" if r.get(f"{key}_se")
                                   is not None else None, r.get("n_test")))
    return format_bar(seed_error(None if r[key] is None else r[key] / 100.0 for r in rows))


def table2_markdown(table: list) -> str:
    """Table 2 as a Markdown table, errors in % with their bars (:mod:`.single_eval`): one row
    per run (± SE of its test set), or per seed group (± std over the seeds); — where there
    is no value."""
    head = ("| run | setup | epochs trained | Te-None | Te-Sign | Te-Round | best-val epoch "
            "| Te-None @best val | Te-Sign @best val | Te-Round @best val "
            "| paper Te-None | paper Te-Sign | paper Te-Round |")
    lines = [head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]
    groups = {}
    for r in table:
        groups.setdefault(r.get("seed_group", r["run"]), []).append(r)
    for name, rows in groups.items():
        r = rows[0]
        label = r["run"] if len(rows) == 1 else \
            f"{name} (seeds {', '.join(str(x.get('seed')) for x in rows)})"
        epochs = f"{format_value(r['epochs_trained'])} of {format_value(r['epochs_planned'])}"
        cells = [label, describe_setup(r), epochs]
        cells += [_bar(rows, f"te_{t}") for t in TESTS]
        cells.append(format_value(r["best_val_epoch"]) if len(rows) == 1 else
                     ", ".join(format_value(x["best_val_epoch"]) for x in rows))
        cells += [_bar(rows, f"best_val_te_{t}") for t in TESTS]
        cells += [format_value(r[f"paper_te_{t}"]) for t in TESTS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table2(runs: list, out) -> tuple:
    """Write ``table2.md`` and ``table2.csv`` into ``out``; returns their paths."""
    out = Path(out)
    table = table2(runs)
    md = ("# Table 2 — test error (%)\n\n" + table2_markdown(table) + "\n" + TABLE_NOTE + "\n")
    md_path = atomic_write_text(out / "table2.md", md)
    buf = io.StringIO()
    fields = list(table[0]) if table else ["run"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    csv_path = atomic_write_text(out / "table2.csv", buf.getvalue())
    return md_path, csv_path
