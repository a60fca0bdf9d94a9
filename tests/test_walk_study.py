"""The walk study as a Python call (walking_noise/study.py), without the command line: the
same rows and tables as `tinyproj walk` with the same settings, and the same checks first."""
import json

import pytest

from tinyproj import reporting
from tinyproj import walking_noise as wn
from tinyproj.cli import main as cli_main
from tinyproj.errors import UserError

TINY = ["--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
        "--test-subset", "64", "--sites", "input"]
TRAINING = wn.Training(dataset="synthetic", epochs=1, train_subset=128)
SCORING = wn.Scoring(test_subset=64)
TIMES = ("seconds", "train_seconds", "eval_seconds")
"""Row fields that are wall-clock measurements, not results: left out of the comparisons."""


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMES}
            for line in path.read_text().splitlines()]


def _same_files(cli_out, lib_out, names):
    for name in names:
        if name.endswith(".jsonl"):
            assert _rows(lib_out / name) == _rows(cli_out / name), name
        else:
            assert (lib_out / name).read_text() == (cli_out / name).read_text(), name


STUDIES = {
    "clean": (["--sigmas", "0,1"],
              lambda out: wn.clean_study(out, "additive", [0, 1], training=TRAINING,
                                         scoring=SCORING, sites=["input"], progress=False,
                                         log=None),
              ["walk.jsonl"]),
    "noisy": (["--sigmas", "0.1,10", "--train-noise", "0.5"],
              lambda out: wn.noisy_study(out, "additive", [0.1, 10], train_noise=0.5,
                                         training=TRAINING, scoring=SCORING, sites=["input"],
                                         progress=False, log=None),
              ["walk.jsonl", "dynamics.jsonl"]),
    "train-at-sigma": (["--sigmas", "0.1,10", "--protocol", "train-at-sigma"],
                       lambda out: wn.train_at_sigma_study(
                           out, "additive", [0.1, 10], training=TRAINING, scoring=SCORING,
                           sites=["input"], progress=False, log=None),
                       ["walk.jsonl"]),
}


@pytest.mark.parametrize("kind", sorted(STUDIES))
def test_a_study_from_python_writes_what_the_cli_writes(tmp_path, kind):
    flags, study, jsonl = STUDIES[kind]
    cli_out, lib_out = tmp_path / "cli", tmp_path / "lib"
    assert cli_main(["walk", "--out", str(cli_out), "--no-progress", "--quiet", *TINY,
                     *flags]) == 0
    done = study(lib_out)
    assert isinstance(done, wn.StudyResult)
    assert done.total == 2 and len(done.rows) == 2          # (input) x (two σ), one seed
    assert [{k: v for k, v in r.items() if k not in TIMES} for r in done.rows] == \
        _rows(lib_out / "walk.jsonl")
    _same_files(cli_out, lib_out, [*jsonl, "midpoints.csv", "walk-points.csv"])
    assert (lib_out / wn.WALK_MARK).is_file()
    assert done.table == wn.midpoints_table(done.rows)
    assert study(lib_out).rows == done.rows                  # resumed: nothing measured again
    # the figures: what the CLI drew, from the study's own rows (reporting sits above
    # walking_noise, so the library call leaves them to reporting.write_study_figures)
    drawn = reporting.write_study_figures(done.rows, done.table, lib_out)
    assert {p.name for p in drawn} == {p.name for p in cli_out.glob("*.png")}
    assert all(p.stat().st_size > 1000 for p in drawn)


def test_a_study_checks_its_folder_and_sites_before_anything(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "midpoints.csv").write_text("my own table\n")
    with pytest.raises(UserError, match="--out"):
        wn.clean_study(foreign, "additive", [1], training=TRAINING, scoring=SCORING,
                       sites=["input"], progress=False, log=None)
    assert sorted(p.name for p in foreign.iterdir()) == ["midpoints.csv"]
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="inptu"):
        wn.noisy_study(fresh, "additive", [1], train_noise=0.5, training=TRAINING,
                       scoring=SCORING, sites=["inptu"], progress=False, log=None)
    assert not fresh.exists()


def test_train_only_trains_and_returns_nothing(tmp_path):
    said = []
    assert wn.clean_study(tmp_path / "w", "additive", [1], training=TRAINING, scoring=SCORING,
                          sites=["input"], train_only=True, progress=False,
                          log=said.append) is None
    assert (tmp_path / "w" / "model" / "checkpoint.npz").is_file()
    assert not (tmp_path / "w" / "walk.jsonl").exists() and said[-1].startswith("trained: ")
