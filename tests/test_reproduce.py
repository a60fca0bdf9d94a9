"""`tinyproj reproduce`: the plan, its folder guard, SLURM script and one real network."""
import json

import pytest

from tinyproj import reproduce as rp
from tinyproj.cli import main
from tinyproj.data.location import data_dir
from tinyproj.errors import UserError


def _settings(**kw):
    kw.setdefault("kind", "table2")
    return rp.ReproduceSettings(**kw)


def test_plan_trains_then_sweeps_each_network_and_reports_last(tmp_path):
    steps = rp.plan(_settings(), tmp_path)
    assert len(steps) == 6 * 2 + 1
    assert [s.argv[0] for s in steps[:2]] == ["train", "sweep"]
    assert steps[0].argv[steps[0].argv.index("--preset") + 1] == "tr-none-nc"
    assert steps[-1].argv[0] == "report" and steps[-1].network is None
    assert {s.network for s in steps[:-1]} == set(range(6))


def test_seeds_give_one_folder_each_and_no_sweeps_when_none_asked(tmp_path):
    steps = rp.plan(_settings(seeds=2, distortions=""), tmp_path)
    assert [s.argv[0] for s in steps] == ["train"] * 12 + ["report"]
    outs = [s.argv[s.argv.index("--out") + 1] for s in steps[:2]]
    assert outs[0].endswith("tr-none-nc-seed0") and outs[1].endswith("tr-none-nc-seed1")
    assert steps[1].argv[steps[1].argv.index("--seed") + 1] == "1"


def test_bad_settings_name_the_flag():
    for kw, flag in [({"kind": "table3"}, "reproduce"), ({"width": 0}, "--width"),
                     ({"seeds": 0}, "--seeds"), ({"draws": 0}, "--draws"),
                     ({"epochs": 0}, "--epochs"), ({"train_subset": 0}, "--train-subset"),
                     ({"distortions": "addnorm,warp"}, "--distortions")]:
        with pytest.raises(UserError) as err:
            _settings(**kw)
        assert err.value.flag == flag


def test_folder_guard_refuses_foreign_and_other_settings(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not made by `tinyproj reproduce`"):
        rp.check_out_folder(_settings(), foreign)
    assert (foreign / "notes.txt").read_text() == "mine"

    ours = tmp_path / "ours"
    rp.write_marker(_settings(width=0.25), ours)
    rp.check_out_folder(_settings(width=0.25, epochs=7), ours)     # epochs may grow
    with pytest.raises(UserError, match="width: the folder has 0.25"):
        rp.check_out_folder(_settings(width=1.0), ours)
    (ours / rp.MARKER).write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        rp.check_out_folder(_settings(width=0.25), ours)
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        rp.check_out_folder(_settings(), file)


def test_select_one_network_or_the_report(tmp_path):
    s = _settings()
    steps = rp.plan(s, tmp_path)
    assert [st.argv[0] for st in rp.select(steps, s, network=2)] == ["train", "sweep"]
    assert [st.argv[0] for st in rp.select(steps, s, report_only=True)] == ["report"]
    with pytest.raises(UserError, match="0..5"):
        rp.select(steps, s, network=6)
    with pytest.raises(UserError, match="exclude each other"):
        rp.select(steps, s, network=0, report_only=True)


def test_run_plan_stops_at_the_first_failure():
    steps = [rp.Step(["a"], "a"), rp.Step(["b"], "b"), rp.Step(["c"], "c")]
    done = []

    def execute(argv):
        done.append(argv[0])
        return 2 if argv[0] == "b" else 0

    lines = []
    assert rp.run_plan(steps, execute, log=lines.append) == 2
    assert done == ["a", "b"] and "run the same" in lines[-1]


def test_slurm_script_has_one_task_per_network_and_never_overwrites(tmp_path, capsys):
    script = tmp_path / "t2.sh"
    out = tmp_path / "repro"
    assert main(["reproduce", "table2", "--out", str(out), "--seeds", "2",
                 "--slurm", str(script)]) == 0
    text = script.read_text()
    assert "#SBATCH --array=0-11" in text and '--network "$SLURM_ARRAY_TASK_ID"' in text
    assert "--report-only" in text and not out.exists()     # nothing run, nothing made
    # SLURM opens --output before the script runs: its folder must exist already (beside
    # the script), never one that the script itself would make
    output = next(line for line in text.splitlines() if line.startswith("#SBATCH --output="))
    assert output == f"#SBATCH --output={tmp_path / 't2'}-%A_%a.out"
    assert "mkdir" not in text
    assert main(["reproduce", "table2", "--out", str(out), "--slurm", str(script)]) == 2
    assert "exists" in capsys.readouterr().err and script.read_text() == text


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "alexnet", "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "--preset alexnet-stochm3-c" in printed and "report" in printed
    assert not out.exists()


def _have_cifar10():
    try:
        return (data_dir() / "cifar-10-batches-py" / "data_batch_1").is_file()
    except UserError:
        return False


@pytest.mark.skipif(not _have_cifar10(), reason="CIFAR-10 not found (../shared/datasets)")
@pytest.mark.numpy_only("the plan's commands and folder guard; training on the stand-in is "
                        "tested in tests/test_training.py and tests/test_standin.py")
def test_one_network_end_to_end_then_resumed_then_guarded(tmp_path, capsys):
    out = tmp_path / "repro"
    argv = ["reproduce", "table2", "--out", str(out), "--width", "0.0625", "--epochs", "1",
            "--train-subset", "100", "--test-subset", "100", "--distortions", "",
            "--network", "0"]
    assert main(argv) == 0
    run = out / "runs" / "tr-none-nc"
    assert (run / "checkpoint.npz").is_file()
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert json.loads((out / rp.MARKER).read_text())["width"] == 0.0625
    capsys.readouterr()
    assert main(argv) == 0                          # the same command: the run is resumed
    assert "--resume" in capsys.readouterr().out
    assert (run / "metrics.jsonl").read_text().splitlines()[:len(rows)] == rows
    changed = [a if a != "0.0625" else "0.125" for a in argv]
    assert main(changed) == 2                       # another width: other networks, refused
    assert "width: the folder has 0.0625" in capsys.readouterr().err
