"""The command line against a hostile user: bad input and faults (issue 10).

Each case of ``hostile_cases.CASES`` is a small scenario (synthetic data, tiny settings)
and asserts what a careful framework does: a user error exits 2 with an ``error: ...``
line naming the flag, file or value, without a traceback and before any file is made;
no file the command did not create is deleted or overwritten; no stale result is
reported; valid commands (resume from ``--out`` alone, lenet5 on 32x32 images, SIGTERM
then resume) work. See ``hostile_cases.py`` for the outcome classes.

Outcome table for any tree (e.g. the commit before the redesign)::

    PYTHONPATH=/tmp/before .venv/bin/python tests/test_cli_hostile.py --classify
    .venv/bin/python tests/test_cli_hostile.py --classify --details [--only ID,ID]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_cases as hc  # noqa: E402

try:
    import pytest
except ImportError:        # --classify needs no pytest
    pytest = None


if pytest is not None:
    @pytest.fixture(scope="module")
    def hostile_fixtures(tmp_path_factory):
        scratch = tmp_path_factory.mktemp("hostile")
        env = hc.case_environment(scratch)
        saved = {k: os.environ.get(k) for k in list(env) + ["TINYPROJ_DATA"]}
        os.environ.update(env)
        os.environ.pop("TINYPROJ_DATA", None)
        yield hc.Fixtures(scratch / "_fixtures")
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    @pytest.mark.parametrize("case", hc.CASES, ids=[c.id for c in hc.CASES])
    def test_hostile(case, hostile_fixtures, tmp_path):
        outcome = hc.run_case(case, tmp_path / "case", hostile_fixtures)
        if outcome.cls == "skipped":
            pytest.skip(outcome.detail)
        assert outcome.cls in case.accept, (
            f"{case.what}\n  expected: {case.expect}\n  got: {outcome.cls}: {outcome.detail}")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="classify every hostile case for the tinyproj "
                                                 "on PYTHONPATH")
    parser.add_argument("--classify", action="store_true", required=True)
    parser.add_argument("--only", default=None, help="comma-separated case ids")
    parser.add_argument("--details", action="store_true", help="detail of every case")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    hc.classify(only=set(args.only.split(",")) if args.only else None, details=args.details,
                keep=args.keep)
