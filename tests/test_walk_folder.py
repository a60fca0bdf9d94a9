"""`tinyproj walk`'s --out folder and the rows it keeps there (rule 8 of docs/design.md): walk
writes only into a folder of its own, dynamics rows name their network, the epochs recorded
are the resolved ones, and --run's sites are checked before any data is loaded."""
import argparse
import json
import time

import pytest

from tinyproj.cli import build_parser, main as cli_main
from tinyproj.cli import walk_models
from tinyproj.walking_noise.study_folder import WALK_MARK, check_out_folder, is_walk_folder
from tinyproj.errors import UserError
from tinyproj.runs.fingerprint import checkpoint_fingerprint

TINY = ["--dataset", "synthetic", "--epochs", "1", "--train-subset", "128",
        "--test-subset", "64", "--sigmas", "0,1", "--sites", "input"]


def _walk(out, *extra):
    return cli_main(["walk", "--out", str(out), "--no-progress", "--quiet", *extra])


# --- 1. --out: a folder of walk's own -----------------------------------------------------------
@pytest.mark.parametrize("name,text", [
    ("midpoints.csv", "my precious results\n"),
    ("walk-accuracy.png", "not a walk's figure"),
    ("walk.jsonl", '{"mine": 1}\n'),
    ("dynamics.jsonl", "notes\n"),
])
def test_a_file_walk_did_not_write_is_never_replaced(tmp_path, capsys, name, text):
    out = tmp_path / "walkout"
    out.mkdir()
    (out / name).write_text(text)
    (out / "notes.txt").write_text("other files are no concern")
    assert _walk(out, *TINY) == 2
    err = capsys.readouterr().err
    assert "--out" in err and name in err and "did not write" in err
    assert (out / name).read_text() == text                      # untouched
    assert sorted(p.name for p in out.iterdir()) == sorted([name, "notes.txt"])   # no mark


def test_a_folder_with_other_files_only_is_claimed_and_marked(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    check_out_folder(out)                                        # no file of walk's names
    assert _walk(out, *TINY) == 0
    assert (out / WALK_MARK).is_file() and (out / "midpoints.csv").is_file()
    assert (out / "notes.txt").read_text() == "mine\n"


def test_a_walk_folder_resumes_and_one_of_an_older_walk_is_recognised(tmp_path):
    out = tmp_path / "w"
    assert _walk(out, *TINY) == 0
    assert (out / WALK_MARK).is_file()
    first = (out / "walk.jsonl").read_text()
    assert _walk(out, *TINY) == 0                                # resume: nothing repeated
    assert (out / "walk.jsonl").read_text() == first
    (out / WALK_MARK).unlink()                                   # a walk made before the mark
    assert is_walk_folder(out)
    assert _walk(out, *TINY) == 0
    assert (out / "walk.jsonl").read_text() == first and (out / WALK_MARK).is_file()
    # an older walk's folder with only its shard file or its midpoints.csv is walk's too
    other = tmp_path / "old"
    other.mkdir()
    (other / "walk.shard-0-of-2.jsonl").write_text(first.splitlines()[0] + "\n")
    (other / "walk-accuracy.png").write_bytes(b"an old walk's figure")
    assert is_walk_folder(other)
    check_out_folder(other)
    csv_only = tmp_path / "csv"
    csv_only.mkdir()
    (csv_only / "midpoints.csv").write_text((out / "midpoints.csv").read_text())
    assert is_walk_folder(csv_only)


def test_out_below_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="--out"):
        check_out_folder(tmp_path / "f" / "w")


# --- 2. dynamics rows name their network ----------------------------------------------------------
NOISY = ["--dataset", "synthetic", "--epochs", "1", "--train-subset", "128", "--test-subset",
         "64", "--sigmas", "0.1,10", "--sites", "input", "--train-noise", "0.5"]


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_dynamics_rows_carry_the_network_and_another_networks_are_refused(tmp_path, capsys):
    out = tmp_path / "tn"
    assert _walk(out, *NOISY) == 0
    dyn = out / "dynamics.jsonl"
    (net_file,) = (out / "noisy-models").glob("*.npz")
    net = checkpoint_fingerprint(net_file)
    rows = _rows(dyn)
    assert len(rows) == 2 and {r["network"] for r in rows} == {net}
    assert {r["network"] for r in _rows(out / "walk.jsonl")} == {net}   # the walk's network
    assert _walk(out, *NOISY) == 0 and _rows(dyn) == rows                  # no duplicates
    # rows of an older tinyproj (no fingerprint) that are this network's own are kept
    _write(dyn, [{k: v for k, v in r.items() if k != "network"} for r in rows])
    assert _walk(out, *NOISY) == 0 and len(_rows(dyn)) == 2
    # the network trained again (another fingerprint on file): refused, nothing appended
    _write(dyn, [dict(r, network="0123456789abcdef") for r in rows])
    before = dyn.read_text()
    assert _walk(out, *NOISY) == 2
    err = capsys.readouterr().err
    assert "another network" in err and "0123456789abcdef" in err and "--restart" in err
    assert dyn.read_text() == before
    # an older row (no fingerprint) that differs from this network's: refused too
    _write(dyn, [dict({k: v for k, v in r.items() if k != "network"}, test_accuracy=0.5)
                 for r in rows])
    assert _walk(out, *NOISY) == 2
    assert "another network" in capsys.readouterr().err
    # --restart moves walk.jsonl and dynamics.jsonl aside together; the network is read back
    assert _walk(out, *NOISY, "--restart") == 0
    (moved,) = (out / "replaced").iterdir()
    assert sorted(p.name for p in moved.iterdir()) == ["dynamics.jsonl", "walk.jsonl"]
    assert [r["network"] for r in _rows(dyn)] == [net, net]
    assert _rows(dyn) == rows


# --- 3. the epochs recorded are the resolved ones -------------------------------------------------
def _args(*argv):
    """Parsed flags *without* check_args (walk_models' functions resolve --epochs themselves)."""
    return build_parser().parse_args(["walk", "--out", "unused", "--dataset", "synthetic",
                                      "--setup", "legacy", *argv])


def test_noisy_model_records_and_logs_the_resolved_epochs(tmp_path, monkeypatch):
    from tinyproj import walking_noise as wn
    from tinyproj.runs.files import load_checkpoint, save_checkpoint
    seen, said = [], []

    def fake_train(model, data, spec, **kw):
        seen.append(kw["epochs"])
        return model, []
    monkeypatch.setattr(wn, "train_noisy", fake_train)
    args = _args()
    assert args.epochs is None
    spec = wn.parse_noise("additive:sigma=0.5")
    data = (None, None, (3, 32, 32), 10)
    dyn = tmp_path / "dynamics.jsonl"
    walk_models.noisy_model(args, spec, 0, 0, "input", tmp_path, data, dyn, said.append)
    assert seen == [5] and "5 epoch(s)" in said[0] and "None" not in said[0]   # legacy: 5
    (path,) = (tmp_path / "noisy-models").glob("*.npz")
    state, _, meta = load_checkpoint(path)
    assert meta["epochs"] == 5
    given = _args("--epochs", "5")                     # the same epochs, given explicitly
    assert walk_models.noisy_model(given, spec, 0, 0, "input", tmp_path, data, dyn,
                                   said.append) is not None and seen == [5]   # read back
    # a network saved by an older tinyproj, epochs None (= the set-up's): still read back
    save_checkpoint(path, state, {"state": [], "hyper": {}, "t": 0}, dict(meta, epochs=None))
    walk_models.noisy_model(given, spec, 0, 0, "input", tmp_path, data, dyn, said.append)
    with pytest.raises(UserError, match="epochs"):
        walk_models.noisy_model(_args("--epochs", "2"), spec, 0, 0, "input", tmp_path, data,
                                dyn, said.append)


def test_clean_run_logs_the_resolved_epochs(tmp_path, monkeypatch):
    from tinyproj.runs import training
    said = []

    class Stop(Exception):
        pass

    def fake_train(cfg, **kw):
        raise Stop(cfg.epochs)
    monkeypatch.setattr(training, "train", fake_train)
    with pytest.raises(Stop) as stop:
        walk_models.clean_run(_args(), 0, tmp_path, None, said.append)
    assert stop.value.args == (5,) and "5 epoch(s)" in said[0] and "None" not in said[0]


# --- 4. walk --run: the sites checked before any data ---------------------------------------------
def test_run_sites_are_checked_from_config_json_before_any_data(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    cfg = walk_models.train_config(
        argparse.Namespace(**dict(vars(_args()), dataset="mnist", model="mlp_tfc",
                                  data_dir=str(tmp_path / "no-data"))), 0, run)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))     # no data, no checkpoint
    out = tmp_path / "w"
    start = time.perf_counter()
    assert _walk(out, "--run", str(run), "--sites", "inptu") == 2
    err = capsys.readouterr().err
    assert "--sites" in err and "inptu" in err and "fc1" in err     # the run's own sites
    assert time.perf_counter() - start < 5 and not out.exists()
    assert _walk(out, "--run", str(run), "--site-repeats", "1,2") == 2
    assert "8 noise sites" in capsys.readouterr().err and not out.exists()
    assert _walk(out, "--run", str(tmp_path / "nope")) == 2
    err = capsys.readouterr().err
    assert "--run" in err and "nope" in err and not out.exists()
