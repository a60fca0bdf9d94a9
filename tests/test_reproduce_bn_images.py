"""`tinyproj reproduce --bn-images all|N`: passed to every evaluating step, part of the folder's
identity, carried into the SLURM script, and checked before anything is written."""
import json

import pytest

from tinyproj import reproduce as rp
from tinyproj.cli import build_parser, main
from tinyproj.cli.flags import config_overrides
from tinyproj.errors import UserError
from tinyproj.runs.config import make_config


def _settings(**kw):
    kw.setdefault("kind", "table2")
    return rp.ReproduceSettings(**kw)


def _without_bn(argv):
    """argv less its ``--bn-images VALUE`` pair."""
    if "--bn-images" not in argv:
        return list(argv)
    i = argv.index("--bn-images")
    return argv[:i] + argv[i + 2:]


def _bn_of(argv):
    return argv[argv.index("--bn-images") + 1] if "--bn-images" in argv else None


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err          # one line, no traceback
    return err


def test_without_the_flag_the_plan_is_todays_and_with_it_only_gains_the_flag(tmp_path):
    plain = rp.plan(_settings(), tmp_path)
    runs = tmp_path / "runs"
    # the commands of a reproduction without --bn-images, exactly as before the flag existed
    assert plain[0].argv == ["train", "--preset", "tr-none-nc", "--out",
                             str(runs / "tr-none-nc"), "--no-progress", "--width", "1.0",
                             "--seed", "0"]
    assert plain[1].argv == ["sweep", str(runs / "tr-none-nc"), "--distortion",
                             "table2,addnorm,multunif,power", "--draws", "3", "--no-progress",
                             "--quiet"]
    assert plain[-1].argv == ["report"] + [str(runs / p) for p in rp.KINDS["table2"]] + [
        "--out", str(tmp_path / "report")]
    assert not any("--bn-images" in s.argv for s in plain)
    for value, text in (("all", "all"), (5000, "5000"), ("ALL", "all"), ("  7 ", "7")):
        steps = rp.plan(_settings(bn_images=value), tmp_path)
        assert [_without_bn(s.argv) for s in steps] == [s.argv for s in plain]
        assert {_bn_of(s.argv) for s in steps} == {text}       # every step has it


def test_every_evaluating_step_gets_it_also_when_resumed_and_for_alexnet(tmp_path):
    run = tmp_path / "runs" / "tr-none-nc"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoint.npz").write_bytes(b"")       # enough for the plan to say --resume
    steps = rp.plan(_settings(bn_images="all", data_dir="/data"), tmp_path)
    assert "--resume" in steps[0].argv and _bn_of(steps[0].argv) == "all"
    assert steps[0].argv[-2:] == ["--data-dir", "/data"]
    assert [_bn_of(s.argv) for s in steps] == ["all"] * len(steps)
    alex = rp.plan(_settings(kind="alexnet", bn_images=20000), tmp_path / "a")
    assert [(s.argv[0], _bn_of(s.argv)) for s in alex] == [("train", "20000"),
                                                          ("report", "20000")]


@pytest.mark.parametrize("kind", sorted(rp.KINDS))
def test_train_sweep_and_report_accept_the_plans_commands(kind, tmp_path):
    """No preset of a reproduction turns re-estimation off, so train takes the flag: each
    training step's argv, parsed and validated as `tinyproj train` would, asks for it."""
    parser = build_parser()
    for value, want in (("all", "all"), ("5000", 5000)):
        for step in rp.plan(_settings(kind=kind, bn_images=value), tmp_path):
            args = parser.parse_args(step.argv)        # an unknown flag would exit here
            if step.argv[0] == "train":
                cfg = make_config(**config_overrides(args))
                assert cfg.bn_images == want and cfg.bn_reestimate
            else:
                assert args.bn_images == value


def test_a_preset_without_reestimation_is_refused_up_front(monkeypatch):
    from tinyproj.runs.presets import PRESETS
    monkeypatch.setitem(PRESETS, "tr-power-c", dict(PRESETS["tr-power-c"],
                                                    bn_reestimate=False))
    with pytest.raises(UserError, match="tr-power-c") as err:
        _settings(bn_images="all")
    assert err.value.flag == "--bn-images"
    _settings()                                      # without the flag nothing changes


@pytest.mark.parametrize("value", ["lots", "0", "-5", "", "2.5", "true"])
def test_a_bad_value_is_refused_before_anything_is_written(value, tmp_path, capsys):
    out, script = tmp_path / "repro", tmp_path / "t2.sh"
    for extra in ([], ["--dry-run"], ["--slurm", str(script)]):
        assert main(["reproduce", "table2", "--out", str(out), f"--bn-images={value}",
                     "--width", "0.0625", "--distortions", ""] + extra) == 2
        assert "--bn-images" in _error(capsys)
    assert sorted(tmp_path.iterdir()) == []         # no folder, no reproduce.json, no script
    with pytest.raises(UserError) as err:
        _settings(bn_images=value)
    assert err.value.flag == "--bn-images"


def test_the_value_is_part_of_the_folders_identity(tmp_path):
    out = tmp_path / "repro"
    rp.write_marker(_settings(bn_images="ALL"), out)
    assert json.loads((out / rp.MARKER).read_text())["bn_images"] == "all"
    rp.check_out_folder(_settings(bn_images="all", epochs=9), out)     # the same: continues
    with pytest.raises(UserError, match="you asked for --bn-images 5000") as err:
        rp.check_out_folder(_settings(bn_images=5000), out)
    assert err.value.flag == "--bn-images"
    assert "made with --bn-images all" in str(err.value)
    assert "again with --bn-images all" in str(err.value) and "new --out" in str(err.value)
    with pytest.raises(UserError, match="again with --bn-images all") as err:
        rp.check_out_folder(_settings(), out)                          # flag left out
    assert err.value.flag == "--bn-images"
    with pytest.raises(UserError) as err:                               # width differs too
        rp.check_out_folder(_settings(width=0.5), out)
    assert "width: the folder has 1.0" in str(err.value)
    assert "--bn-images: the folder has --bn-images all" in str(err.value)


def test_an_older_reproduce_json_reads_as_not_given(tmp_path):
    out = tmp_path / "old"
    rp.write_marker(_settings(width=0.25), out)
    saved = json.loads((out / rp.MARKER).read_text())
    assert "bn_images" in saved and saved["bn_images"] is None
    del saved["bn_images"]                           # as written before the flag existed
    (out / rp.MARKER).write_text(json.dumps(saved))
    rp.check_out_folder(_settings(width=0.25), out)
    with pytest.raises(UserError, match="made with no --bn-images") as err:
        rp.check_out_folder(_settings(width=0.25, bn_images="all"), out)
    assert "again without --bn-images" in str(err.value) and err.value.flag == "--bn-images"


def test_cli_refuses_another_value_for_an_existing_folder(tmp_path, capsys):
    out = tmp_path / "repro"
    rp.write_marker(_settings(bn_images=5000), out)
    before = (out / rp.MARKER).read_text()
    assert main(["reproduce", "table2", "--out", str(out), "--bn-images", "all",
                 "--dry-run"]) == 2
    err = _error(capsys)
    assert "--bn-images 5000" in err and "--bn-images all" in err
    assert (out / rp.MARKER).read_text() == before
    assert main(["reproduce", "table2", "--out", str(out), "--bn-images", "5000",
                 "--dry-run"]) == 0


def test_dry_run_and_slurm_script_carry_it(tmp_path, capsys):
    out, script = tmp_path / "repro", tmp_path / "t2.sh"
    assert main(["reproduce", "table2", "--out", str(out), "--bn-images", "All",
                 "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 13 and all(line.endswith(" --bn-images all") for line in lines)
    assert main(["reproduce", "table2", "--out", str(out), "--bn-images", "All",
                 "--slurm", str(script)]) == 0
    text = script.read_text()
    srun = [line for line in text.splitlines() if line.startswith("srun ")]
    report = [line for line in text.splitlines() if "--report-only" in line]
    assert len(srun) == 1 and "--bn-images all --network" in srun[0]
    assert report and all("--bn-images all" in line for line in report)
    plain = tmp_path / "plain.sh"
    assert main(["reproduce", "table2", "--out", str(out), "--slurm", str(plain)]) == 0
    assert "--bn-images" not in plain.read_text()
    assert not out.exists()
