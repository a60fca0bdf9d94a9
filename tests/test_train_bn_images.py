"""``train --bn-images``: the evaluations during training re-estimate batch norm exactly."""
import json

import pytest

from tinyproj import backend
from tinyproj.algorithm1 import project_weights
from tinyproj.cli import main
from tinyproj.errors import UserError
from tinyproj.robustness.bn_estimate import reestimate_exact
from tinyproj.runs import train_eval
from tinyproj.runs.build import build_data
from tinyproj.runs.config import TrainConfig, make_config
from tinyproj.runs.evaluation import error_rate, saved_batchnorm_stats
from tinyproj.runs.training import train

from _helpers import tiny_config


def tiny(tmp_path, name="run", **overrides):
    return tiny_config(tmp_path, name, **dict(dict(epochs=1), **overrides))


def quiet(*args, **kwargs):
    pass


def test_exact_evaluation_scores_the_statistics_of_every_training_image(tmp_path):
    cfg = tiny(tmp_path, bn_images="all")
    model, rows = train(cfg, progress=False, log=quiet)
    train_src, _, test_src, _, _ = build_data(cfg)
    for spec in cfg.test_projections:
        # what the row must hold: Te-X with batch norm set to the exact statistics of all
        # 120 training images under the projected weights (the order of the images, drawn
        # from another generator here, changes only float64 rounding)
        with saved_batchnorm_stats(model), project_weights(model, spec, backend.make_rng(7)):
            assert reestimate_exact(model, train_src, rng=backend.make_rng(7)) == 120
            expected = error_rate(model, test_src, cfg.eval_batch_size)
        assert rows[0]["test_error"][spec] == pytest.approx(expected, abs=1e-12), spec


def test_the_default_keeps_the_minibatch_protocol_and_the_flag_reaches_the_evaluation(
        tmp_path, monkeypatch):
    seen = []
    real = train_eval.errors_by_projection

    def spy(*args, **kwargs):
        seen.append((kwargs["bn_batches"], kwargs["bn_images"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_eval, "errors_by_projection", spy)
    train(tiny(tmp_path, "default"), progress=False, log=quiet)
    train(tiny(tmp_path, "exact", bn_images=60), progress=False, log=quiet)
    assert seen == [(2, None), (2, 60)]


def test_the_progress_line_names_the_protocol(tmp_path):
    lines = []
    train(tiny(tmp_path, bn_images="all"), progress=True, log=lines.append)
    assert any("re-estimated exactly for each (every training image)" in str(line)
               for line in lines), lines


@pytest.mark.parametrize("value, words", [(0, "must be a number of training images >= 1"),
                                          (-5, "must be a number of training images >= 1"),
                                          (2.5, "must be a number of training images >= 1"),
                                          (True, "must be a number of training images >= 1")])
def test_bad_values_are_refused_naming_the_flag(tmp_path, value, words):
    with pytest.raises(UserError, match=words) as err:
        tiny(tmp_path, bn_images=value)
    assert err.value.flag == "--bn-images"


def test_all_is_read_in_any_case_and_a_count_stays_a_count(tmp_path):
    assert tiny(tmp_path, bn_images=" ALL ").bn_images == "all"
    assert tiny(tmp_path, bn_images=300).bn_images == 300


def test_contradicting_no_bn_reestimate_is_refused(tmp_path):
    with pytest.raises(UserError, match="--no-bn-reestimate") as err:
        tiny(tmp_path, bn_images="all", bn_reestimate=False)
    assert err.value.flag == "--bn-images"


def test_an_old_config_without_the_setting_still_loads_with_the_old_protocol():
    values = make_config("tr-sign-c").to_dict()
    del values["bn_images"]                 # config.json written before --bn-images existed
    assert TrainConfig.from_dict(values).bn_images is None


def test_resume_refuses_another_protocol(tmp_path):
    cfg = tiny(tmp_path)
    train(cfg, progress=False, log=quiet)
    again = tiny(tmp_path, bn_images="all", epochs=2)
    with pytest.raises(UserError, match="--bn-images: the run has None, you gave 'all'"):
        train(again, resume=True, progress=False, log=quiet)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bn_images"] is None


def test_resume_accepts_the_same_protocol_given_again(tmp_path):
    """What `reproduce --bn-images all` does on its second run: `train --resume --bn-images
    all` for a run made with it."""
    train(tiny(tmp_path, bn_images="all"), progress=False, log=quiet)
    _, rows = train(tiny(tmp_path, bn_images="all", epochs=2), resume=True, progress=False,
                    log=quiet)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bn_images"] == "all"


def test_cli_flag_text_errors_exit_2_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--preset", "tr-sign-c", "--dataset", "synthetic", "--bn-images",
              "lots", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--bn-images" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    assert main(["train", "--preset", "tr-sign-c", "--dataset", "synthetic", "--bn-images", "0",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--bn-images: must be a number of training images >= 1" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
