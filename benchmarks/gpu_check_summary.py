"""summary.json for benchmarks/gpu_check.sh: each step's exit status, seconds and test counts.

    python benchmarks/gpu_check_summary.py OUT NAME=RC:SECONDS ...
    python benchmarks/gpu_check_summary.py --alexnet-step OUT/gpu-bench.json

The second form prints the AlexNet-BN step's measured seconds (tinyproj, strict float32) from
the bench's JSON, or nothing when the bench did not get that far: gpu_check.sh hands it to the
input-pipeline benchmark, which then compares decoding with the step it must feed.

A test step's counts come from pytest's closing line ("12 passed, 1 failed in 30.1s"). A step
that its ``timeout`` stopped (exit 124, or 137 when it had to kill) has no closing line; its
tests were run with ``-v`` (in one process or in pytest-xdist's workers), so each finished
test left a ``PASSED``/``FAILED``/``SKIPPED``/``ERROR`` line, and those are counted instead,
with ``"stopped": true``: a lent GPU's minutes still tell how far it got.
The summary also reads issue 12's targets off the bench, epoch and pipeline files
(tinyproj/bench/targets.py) and prints them last, where the device tool's reply shows them.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from a checkout

from tinyproj.bench import targets                                  # noqa: E402

TIMED_OUT = (124, 137)          # what coreutils' timeout returns: TERM, or KILL 10 s later
# the log file of each test step (the bench steps write JSON of their own)
TEST_LOGS = {"gpu_tests": "gpu-tests.txt", "graph_tests": "graph-tests.txt",
             "suite_cupy": "suite-cupy.txt"}
_CLOSING = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")
# "tests/a.py::test_x[a b] PASSED  [ 10%]", or with pytest-xdist "[gw0] [ 10%] PASSED tests/..."
_PER_TEST = re.compile(r"^(?:\S+::.*? |\[gw\d+\] \[\s*\d+%\] )"
                       r"(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b", re.MULTILINE)


def counts(text: str, stopped: bool = True) -> dict:
    """Test outcomes in a pytest log: from its closing line, or else per test (``-v`` lines),
    marked ``"stopped"`` (its timeout ended it) or ``"no_closing_line"`` (pytest itself
    ended early, e.g. an error while collecting: the log says which)."""
    lines = text.strip().splitlines()
    # pytest's closing line "=== 3 passed, 1 failed in 30.12s ===", near the end (a warning
    # printed after it must not hide it)
    closing = next((line for line in reversed(lines[-5:])
                    if re.search(r" in [\d.]+s", line) and _CLOSING.search(line)), "")
    found = {kind: int(n) for n, kind in _CLOSING.findall(closing)}
    if found:
        return found
    per_test: dict = {"stopped" if stopped else "no_closing_line": True}
    for outcome in _PER_TEST.findall(text):
        key = {"ERROR": "errors", "XFAIL": "xfailed", "XPASS": "xpassed"}.get(
            outcome, outcome.lower())
        per_test[key] = per_test.get(key, 0) + 1
    return per_test


def summarize(out: Path, steps: dict) -> dict:
    """``steps``: name -> (exit status, seconds). Test steps get their counts beside them."""
    summary: dict = {"exit": {}, "seconds": {}, "timed_out": []}
    for name, (rc, seconds) in steps.items():
        summary["exit"][name] = rc
        summary["seconds"][name] = seconds
        if rc in TIMED_OUT:
            summary["timed_out"].append(name)
        log = out / TEST_LOGS[name] if name in TEST_LOGS else None
        if log is not None:
            summary[name] = (counts(log.read_text(errors="replace"), rc in TIMED_OUT)
                             if log.exists() else {})
    summary.update(target_report(out))
    return summary


def _read(path) -> dict:
    """A JSON object from ``path``, or {} when it is missing or broken (a stopped step)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def alexnet_step_seconds(bench_json) -> float | None:
    """The strict leg's AlexNet-BN step median (tinyproj) in a bench result, or None."""
    row = targets.find_row(_read(bench_json).get("strict"), "alexnet")
    return None if row is None else float(row["tinyproj"]["median_s"])


def target_report(out: Path) -> dict:
    """Issue 12's targets and TF32's effect, from the files the check wrote under ``out``."""
    strict = _read(out / "gpu-bench.json").get("strict")
    tf32 = _read(out / "gpu-bench-tf32.json").get("tf32")
    found = targets.check(strict, pipeline=_read(out / "pipeline.json"),
                          epoch_leg=_read(out / "gpu-epoch.json").get("strict"))
    effect = targets.tf32_effect(strict, tf32)
    accuracy = _read(out / "tf32-accuracy.json").get("comparison")
    if accuracy:                        # the short CIFAR-10 training, strict against TF32
        effect["test_error_change"] = accuracy["test_error_change"][-1]
        effect["test_error_standard_error"] = accuracy["standard_error"]
    return {"targets": found, "tf32_effect": effect}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--alexnet-step"]:
        seconds = alexnet_step_seconds(argv[1])
        print("" if seconds is None else f"{seconds:.6f}")
        return 0
    out, *pairs = argv
    steps = {}
    for pair in pairs:
        name, _, rest = pair.partition("=")
        rc, _, seconds = rest.partition(":")
        steps[name] = (int(rc), int(seconds or 0))
    summary = summarize(Path(out), steps)
    Path(out, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in summary if k not in ("targets", "tf32_effect")}))
    print("TF32's effect:\n" + targets.format_tf32(summary["tf32_effect"]))
    print("issue 12's targets:\n" + targets.format_table(summary["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
