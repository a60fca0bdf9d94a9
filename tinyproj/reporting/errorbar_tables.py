"""The report's tables with error bars: Table 2 re-scored over draws, and the sweep table.

* :func:`table2_errorbars_markdown` — Te-None, Te-Sign, Te-Round of each run from
  ``RUN/sweeps/table2.jsonl`` (``tinyproj sweep RUN --distortion table2``): mean ± std over
  the draws (n), and, for networks that differ only in seed, mean ± std over the seeds.
* :func:`sweep_table_markdown` — every level of the Figure 2 sweeps, one column per run (or
  seed group), mean ± std (n draws, or n seeds), so the figures' numbers can be read exactly.

Formatting: :func:`tinyproj.reporting.errorbars.format_error` (precision from the spread).
"""
from __future__ import annotations

from .errorbars import format_error, over_seeds

__all__ = ["protocol_text", "table2_errorbars_markdown", "sweep_table_markdown"]


def protocol_text(row: dict) -> str:
    """The batch-norm re-estimation of a sweep or table2 row, in words."""
    if row.get("bn_images") is not None:
        return f"exact, {row['bn_images']} train images"
    if row.get("bn_batches"):
        return f"{row['bn_batches']} × {row.get('bn_batch_size')} batches"
    if row.get("bn_batches") == 0:
        return "stored statistics"
    return "—"


def _pct(v):
    return None if v is None else 100.0 * float(v)


def table2_errorbars_markdown(groups: dict, scores: dict) -> str:
    """Markdown table. groups: ``{name: [RunSummary]}`` (:func:`errorbars.seed_groups`);
    scores: ``{run label: {test: table2 row}}``. Returns "" when no run has scores."""
    from .table2 import TESTS
    if not any(scores.get(r.label) for runs in groups.values() for r in runs):
        return ""
    lines = ["| run | networks | draws each | re-estimation | test images | "
             + " | ".join(f"Te-{t.capitalize()}" for t in TESTS) + " |",
             "| " + " | ".join(["---"] * (5 + len(TESTS))) + " |"]
    for name, runs in groups.items():
        have = [r for r in runs if scores.get(r.label)]
        if not have:
            continue
        first = next(iter(scores[have[0].label].values()))
        cells = []
        for t in TESTS:
            rows = [scores[r.label].get(t) for r in have]
            rows = [x for x in rows if x is not None]
            if not rows:
                cells.append("—")
            elif len(rows) == 1:
                x = rows[0]
                cells.append(format_error(_pct(x["error_mean"]), _pct(x["error_std"]),
                                          x["draws"]))
            else:
                mean, std, n = over_seeds(_pct(x["error_mean"]) for x in rows)
                cells.append(format_error(mean, std, n) + " seeds")
        seeds = ", ".join(str(r.config.get("seed")) for r in have)
        label = name if len(have) == 1 else f"{name} (seeds {seeds})"
        lines.append(f"| {label} | {len(have)} | {first['draws']} | {protocol_text(first)} | "
                     f"{first['n_test']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_table_markdown(distortion: str, curves: dict, symbol: str) -> str:
    """One table for one distortion: rows = levels, columns = curves (``{label: rows}``),
    cells mean ± std (n draws; "seeds" when the curve averages networks)."""
    if not curves:
        return ""
    levels = sorted({float(r["level"]) for rows in curves.values() for r in rows})
    labels = list(curves)
    lines = [f"| {symbol} | " + " | ".join(labels) + " |",
             "| " + " | ".join(["---"] * (len(labels) + 1)) + " |"]
    for level in levels:
        cells = []
        for label in labels:
            row = next((r for r in curves[label] if float(r["level"]) == level), None)
            if row is None:
                cells.append("—")
                continue
            n = row.get("seeds") or row.get("draws")
            text = format_error(_pct(row["error_mean"]), _pct(row.get("error_std")), n)
            cells.append(text + (" seeds" if row.get("seeds") else ""))
        lines.append(f"| {level:g} | " + " | ".join(cells) + " |")
    settings = {}                          # {protocol text: [labels]}, said once each
    for lab, rows in curves.items():
        if rows:
            text = f"{protocol_text(rows[0])}, {rows[0].get('n_test')} test images"
            settings.setdefault(text, []).append(lab)
    where = (next(iter(settings)) if len(settings) == 1 else
             "; ".join(f"{', '.join(labs)}: {text}" for text, labs in settings.items()))
    note = (f"Test error (%) under {distortion}, mean ± std over the draws (n); batch norm "
            f"re-estimated per draw — {where}.")
    return "\n".join(lines) + "\n\n" + note + "\n"

