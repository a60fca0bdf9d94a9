"""Checks of the command line made before any file is written or any data loaded, and the
messages that name their flag (audit of the CLI's rules: docs/design.md)."""
import json
from pathlib import Path

import pytest

from tinyproj.cli import main
from tinyproj.errors import UserError


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def _run_folder(folder: Path, **settings) -> Path:
    """A run folder holding only config.json (what the early checks read)."""
    from tinyproj.runs.config import make_config
    folder.mkdir(parents=True)
    cfg = make_config(**dict(dict(model="mlp_tfc", dataset="synthetic", val_size=0), **settings))
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    return folder


# ---- the flag of a user error is named ---------------------------------------------------
def test_user_message_leads_with_a_flag_the_text_does_not_name():
    from tinyproj.cli import user_message
    assert user_message(UserError("level 'a' is not a number", flag="--levels")) == \
        "--levels: level 'a' is not a number"
    assert user_message(UserError("--levels is empty", flag="--levels")) == "--levels is empty"
    assert user_message(UserError("no flag here")) == "no flag here"
    assert user_message(UserError("x.npz is damaged", flag="SRC")) == "x.npz is damaged"


def test_walk_unknown_model_names_model(capsys, tmp_path):
    assert main(["walk", "--model", "nope", "--dataset", "synthetic",
                 "--out", str(tmp_path / "w")]) == 2
    err = _error(capsys)
    assert "--model" in err and "'nope'" in err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("flag, value", [("--sigmas", "-1"), ("--sigmas", "1,x"),
                                         ("--grid", "nope")])
def test_walk_bad_noise_grid_names_its_flag(flag, value, capsys, tmp_path):
    assert main(["walk", "--dataset", "synthetic", flag, value,
                 "--out", str(tmp_path / "w")]) == 2
    err = _error(capsys)
    assert err.startswith(f"error: {flag}") and "\n" not in err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("levels, words", [("a,b", ["'a'", "not a number"]),
                                           ("-1", ["'-1'", "sigma >= 0"])])
def test_sweep_bad_level_is_one_line_naming_levels(levels, words, capsys, tmp_path,
                                                   monkeypatch):
    import tinyproj.runs.training as training
    monkeypatch.setattr(training, "load_run", lambda *a, **k: pytest.fail("run loaded"))
    run = _run_folder(tmp_path / "run")
    assert main(["sweep", str(run), "--distortion", "addnorm", "--levels", levels]) == 2
    err = _error(capsys)
    assert "\n" not in err and "--levels" in err and all(w in err for w in words)
    assert "Valid projections" not in err


def test_projection_typo_has_no_stray_punctuation(capsys, tmp_path):
    assert main(["train", "--model", "mlp_tfc", "--dataset", "synthetic", "--projection",
                 "bogus", "--out", str(tmp_path / "r")]) == 2
    err = _error(capsys)
    assert "--projection" in err and "'bogus'" in err
    assert ".;" not in err and "'.;" not in err


# ---- sweep --layer: checked against the network of config.json, before any data ----------
@pytest.mark.parametrize("extra", [[], ["--jobs", "2"]])
def test_sweep_layer_typo_fails_before_the_run_or_its_data_load(extra, capsys, tmp_path,
                                                                monkeypatch):
    import tinyproj.robustness as robustness
    import tinyproj.runs.build as build
    import tinyproj.runs.training as training
    monkeypatch.setattr(training, "load_run", lambda *a, **k: pytest.fail("run loaded"))
    monkeypatch.setattr(build, "build_data", lambda *a, **k: pytest.fail("data loaded"))
    monkeypatch.setattr(robustness, "run_sweep_jobs", lambda *a, **k: pytest.fail("jobs ran"))
    run = _run_folder(tmp_path / "run", dataset="mnist")
    assert main(["sweep", str(run), "--distortion", "addnorm", "--layer", "bogus"] + extra) == 2
    err = _error(capsys)
    assert "--layer" in err and "'bogus'" in err and "fc1.weight" in err
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_sweep_data_dir_that_does_not_exist_is_refused_before_loading(capsys, tmp_path,
                                                                      monkeypatch):
    import tinyproj.runs.training as training
    monkeypatch.setattr(training, "load_run", lambda *a, **k: pytest.fail("run loaded"))
    run = _run_folder(tmp_path / "run", dataset="mnist")
    missing = tmp_path / "no" / "such"
    assert main(["sweep", str(run), "--distortion", "addnorm", "--data-dir", str(missing)]) == 2
    err = _error(capsys)
    assert "--data-dir" in err and str(missing) in err and not (tmp_path / "no").exists()


# ---- report --hist-layer ------------------------------------------------------------------
def test_report_hist_layer_typo_is_an_error_before_anything_is_written(capsys, tmp_path,
                                                                       monkeypatch):
    import tinyproj.reporting as reporting
    monkeypatch.setattr(reporting, "make_report", lambda *a, **k: pytest.fail("report made"))
    run = _run_folder(tmp_path / "run")
    out = tmp_path / "rep"
    assert main(["report", str(run), "--out", str(out), "--hist-layer", "bogus"]) == 2
    err = _error(capsys)
    assert "--hist-layer" in err and "'bogus'" in err and "fc1, fc2, fc3, fc4" in err
    assert not out.exists()


def test_report_hist_layer_default_and_valid_names_pass(tmp_path, monkeypatch, capsys):
    import tinyproj.reporting as reporting
    seen = []

    def fake(run_dirs, out, **kw):
        seen.append(kw["hist_layer"])
        raise UserError("stop here")
    monkeypatch.setattr(reporting, "make_report", fake)
    run = _run_folder(tmp_path / "run")
    for extra in ([], ["--hist-layer", "fc3"], ["--hist-layer", "fc3.weight"],
                  ["--hist-layer", "bogus", "--no-analyses"]):
        assert main(["report", str(run), "--out", str(tmp_path / "rep")] + extra) == 2
        assert "stop here" in capsys.readouterr().err
    assert seen == ["conv2", "fc3", "fc3.weight", "bogus"]


# ---- --data-dir that does not exist -------------------------------------------------------
def test_train_data_dir_that_does_not_exist_is_neither_created_nor_run(capsys, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "mlp_tfc", "--dataset", "mnist", "--data-dir",
                 "nope/deeper", "--epochs", "1", "--out", "run", "--no-progress"]) == 2
    err = _error(capsys)
    assert "--data-dir" in err and "nope" in err
    assert "Downloading" not in err                 # no download tried into a mistyped path
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reproduce_data_dir_that_does_not_exist_writes_nothing(capsys, tmp_path):
    out, missing = tmp_path / "X", tmp_path / "nope"
    for extra in ([], ["--slurm", str(tmp_path / "t2.sh")]):
        assert main(["reproduce", "table2", "--out", str(out), "--data-dir", str(missing),
                     "--width", "0.0625", "--epochs", "1", "--distortions", ""] + extra) == 2
        err = _error(capsys)
        assert "--data-dir" in err and str(missing) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reproduce_dry_run_does_not_need_the_data(capsys, tmp_path):
    assert main(["reproduce", "table2", "--out", str(tmp_path / "X"), "--data-dir",
                 str(tmp_path / "nope"), "--dry-run"]) == 0
    assert "tinyproj train" in capsys.readouterr().out


# ---- atomic writes ------------------------------------------------------------------------
def test_slurm_script_is_written_atomically(tmp_path, monkeypatch, capsys):
    import tinyproj.runs.files as files
    written = []
    real = files.atomic_write_text

    def spy(path, text):
        written.append(Path(path))
        return real(path, text)
    monkeypatch.setattr(files, "atomic_write_text", spy)
    script = tmp_path / "t2.sh"
    assert main(["reproduce", "table2", "--out", str(tmp_path / "X"), "--slurm",
                 str(script)]) == 0
    assert written == [script] and script.read_text().startswith("#!")


def test_demo_mark_is_written_atomically(tmp_path, monkeypatch):
    import tinyproj.experiments.demo as demo
    written = []
    monkeypatch.setattr(demo, "atomic_write_text",
                        lambda path, text: written.append(Path(path).name) or
                        Path(path).write_text(text))
    monkeypatch.setattr(demo, "build_data", lambda cfg: None)
    monkeypatch.setattr(demo, "train", lambda cfg, **kw: (None, [{"epoch": 1}]))
    demo.run_demo(["tr-none-nc"], tmp_path / "d", data_dir=tmp_path, progress=False,
                  log=lambda *a: None)
    assert written == [demo.DEMO_MARK]
    assert (tmp_path / "d" / "tr-none-nc" / demo.DEMO_MARK).is_file()


# ---- a flag's text that cannot be read says what the flag expects -------------------------
@pytest.mark.parametrize("flag, text, expects", [
    ("--batch-size", "x", "'x' is not an integer"),
    ("--train-subset", "abc", "'abc' is not an integer (or none)"),
    ("--lr", "fast", "'fast' is not a number"),
    ("--clip", "abc", "'abc' is not a clip factor f > 0 or NC"),
    ("--lr-milestones", "1,a", "'1,a' is not comma-separated integers"),
    ("--bn-images", "lots", "'lots' is not a number of training images or all")])
def test_an_unreadable_flag_says_what_it_expects_not_a_python_name(tmp_path, capsys, flag,
                                                                    text, expects):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--dataset", "synthetic", flag, text, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"argument {flag}: {expects}" in err
    assert "invalid" not in err and "parse_" not in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    assert err.count("\n") == 1 and "usage:" not in err       # one line, no usage block


@pytest.mark.parametrize("argv, says", [
    (["train", "--prest", "tr-sign-c"],
     "error: tinyproj train: unrecognized arguments: --prest tr-sign-c; did you mean --preset "
     "for --prest? (the flags: `tinyproj train --help`)"),
    (["sweep", "run", "--distortion", "addnorm", "--levls", "0.1"],
     "did you mean --levels for --levls?"),
    (["train", "--zzz"], "error: tinyproj train: unrecognized arguments: --zzz (the flags"),
    (["bogus"], "error: tinyproj: argument COMMAND: invalid choice: 'bogus'")])
def test_a_mistyped_flag_or_command_is_one_line_from_its_own_command(capsys, argv, says):
    # argparse leaves an unknown flag to the top parser (its message would name only
    # `tinyproj` and print the top usage block): here the sub-command's parser says it
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err
    assert err.count("\n") == 1 and "usage:" not in err
