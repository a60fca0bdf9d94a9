"""Cross-robustness table (tinyproj.experiments) and the Walking Noise figures (reporting).

The table's glue is tested on fake models whose curves are known in closed form (the
expensive scoring and walking are monkeypatched), so every midpoint can be checked exactly;
one small end-to-end run on synthetic data checks that the real pieces fit together.
Every plot function must write a valid, non-blank PNG.
"""
import csv
import io
import math

import pytest

from tinyproj import backend, experiments, reporting
from tinyproj.data import synthetic_classification
from tinyproj.data.sources import ArraySource
from tinyproj.errors import UserError
from tinyproj.experiments import CrossData, Perturbation, Regime, cells, cross_table
from tinyproj.robustness.bn_estimate import BNProtocol


# ---------------------------------------------------------------------------
# Fakes with known midpoints
# ---------------------------------------------------------------------------
class FakeModel:
    """A 'network' whose curves are known: robustness r (None: at chance already)."""

    def __init__(self, r):
        self.r = r
        self.training = False

    def eval(self):
        return self


def fake_error(model, level, dist):
    """Weights: error 0.1 + 0.8·min(1, damage/(2r)); damage σ (AddNorm) or 1 − γ
    (MultUnif). Threshold 0.5 is crossed at damage = r."""
    if model.r is None:
        return 0.9
    damage = level if dist == "addnorm" else 1.0 - level
    return 0.1 + 0.8 * min(1.0, damage / (2 * model.r))


def fake_accuracy(model, sigma):
    """Activations: accuracy 0.9 down to 0.1, linear in log10 σ from r/10 to 10·r (0.5 at
    σ = r, so μ = r exactly under log interpolation)."""
    if model.r is None:
        return 0.1
    a = 0.9 - 0.4 * (math.log10(sigma / model.r) + 1.0)
    return min(0.9, max(0.1, a))


@pytest.fixture
def fakes(monkeypatch):
    """Patch score_distortion, walk and error_rate as experiments sees them; record calls."""
    calls = {"score": [], "walk": []}

    def score_distortion(model, train, test, spec, draws=None, seed=0, bn=None,
                         test_subset=None, **kw):
        name, _, value = spec.partition(":")
        level = float(value.split("=")[1])
        calls["score"].append((model.r, spec, draws, bn))
        e = fake_error(model, level, name)
        return type("Score", (), dict(mean=e, std=0.0, errors=[e]))()

    def walk(model, train, test, kind, sigmas, sites="each", bn_protocol="running",
             repeats=1, seed=0, test_subset=None, bn_batches=20, progress=True, **kw):
        calls["walk"].append(dict(r=model.r, kind=kind, sites=sites, bn_protocol=bn_protocol,
                                  repeats=repeats, bn_batches=bn_batches))
        return [{"site": -1, "site_name": "all", "noise": kind, "sigma": s,
                 "accuracy": fake_accuracy(model, s), "bn_protocol": bn_protocol,
                 "repeats": repeats, "seed": seed} for s in sigmas]

    monkeypatch.setattr(cells.robustness, "score_distortion", score_distortion)
    monkeypatch.setattr(cells, "walk", walk)
    monkeypatch.setattr(cross_table, "error_rate",
                        lambda model, source, *a, **k: 0.9 if model.r is None else 0.1)
    return calls


PERTS = [
    Perturbation("addnorm", "weight", "addnorm", (0.25, 0.5, 1.0, 2.0), "weights: AddNorm σ"),
    Perturbation("multunif", "weight", "multunif", (1.0, 0.5, 0.2, 0.05), "weights: MultUnif γ",
                 "γ", "down"),
    Perturbation("act-add", "activation", "additive", (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
                 "activations: additive σ"),
]
DATA = CrossData(train=None, test=None, num_classes=10)


@pytest.fixture
def table(fakes):
    models = {"fragile": FakeModel(0.2), "robust": FakeModel(5000.0), "broken": FakeModel(None)}
    return experiments.cross_robustness(models, PERTS, DATA, draws=2, bn_batches=3,
                                  bn_protocol="reestimate", repeats=4, progress=False)


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------
def test_table_shape_and_midpoints(table, fakes):
    assert table.regimes == ["fragile", "robust", "broken"]
    assert [p.name for p in table.perturbations] == ["addnorm", "multunif", "act-add"]
    assert len(table.cells) == 9
    f = {p: table.cell("fragile", p) for p in ("addnorm", "multunif", "act-add")}
    # AddNorm: the identity σ = 0 was added to the grid and crossed at σ = r = 0.2
    assert f["addnorm"].levels[0] == 0.0 and len(f["addnorm"].levels) == 5
    assert f["addnorm"].level == pytest.approx(0.2)
    assert f["addnorm"].clean_accuracy == pytest.approx(0.9)
    assert f["addnorm"].threshold == pytest.approx(0.5)
    # MultUnif walks down from γ = 1; error 0.9 already at γ = 0.5 -> linear 1 → 0.5
    assert f["multunif"].level == pytest.approx(0.75)
    # activations: μ = r (interpolated on log σ)
    assert f["act-add"].level == pytest.approx(0.2, rel=1e-9)
    assert f["act-add"].clean_accuracy == pytest.approx(0.9)
    assert not any(c.beyond_grid for c in f.values())
    # the robust model never falls halfway: beyond the grid, edge max σ / min γ
    for p, edge in (("addnorm", 2.0), ("act-add", 1000.0)):
        c = table.cell("robust", p)
        assert c.level is None and c.beyond_grid and c.grid_edge == edge
    # (robust under MultUnif: damage ≤ 0.95 ≪ 2r, so also beyond, at min γ)
    c = table.cell("robust", "multunif")
    assert c.level is None and c.beyond_grid and c.grid_edge == 0.05
    # at chance without perturbation: no midpoint, not beyond
    for p in ("addnorm", "multunif", "act-add"):
        c = table.cell("broken", p)
        assert c.level is None and not c.beyond_grid and c.note
    assert table.clean_accuracy == {"fragile": 0.9, "robust": 0.9, "broken": pytest.approx(0.1)}
    # the settings reached the expensive parts
    # bn_batches=3 selects the old protocol (3 batches of 50) for the weight columns
    assert {c[2] for c in fakes["score"]} == {2}
    assert {c[3] for c in fakes["score"]} == {BNProtocol.batches(3, 50)}
    assert all(w["sites"] == "all" and w["bn_protocol"] == "reestimate" and w["repeats"] == 4
               and w["bn_batches"] == 3 for w in fakes["walk"])
    assert len(fakes["walk"]) == 3


def test_the_weight_columns_re_estimate_exactly_by_default_as_the_sweeps_do(fakes):
    models = {"fragile": FakeModel(0.2)}
    table = experiments.cross_robustness(models, PERTS, DATA, draws=1, progress=False)
    assert {c[3] for c in fakes["score"]} == {BNProtocol()}          # exact, every image
    assert table.settings["bn_images"] is None and table.settings["bn_batches"] is None
    assert table.settings["bn_reestimation"].startswith("exact over all training images")
    # the activation walks keep Walking Noise's own re-estimation (20 batches by default)
    assert {w["bn_batches"] for w in fakes["walk"]} == {20}
    fakes["score"].clear()
    table = experiments.cross_robustness(models, PERTS, DATA, draws=1, bn_images="500",
                                         bn_pass_size=250, progress=False)
    assert {c[3] for c in fakes["score"]} == {BNProtocol("exact", images=500, pass_size=250)}
    assert table.rows[0]["bn_reestimation"] == "exact over 500 training images, passes of 250"


def test_the_old_protocol_is_named_in_the_files(fakes, tmp_path):
    table = experiments.cross_robustness({"fragile": FakeModel(0.2)}, PERTS, DATA, draws=1,
                                         bn_batches=20, progress=False)
    paths = experiments.write_cross_table(table, tmp_path)
    row = next(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert row["bn_reestimation"] == "average of 20 batches of 50"
    assert "average of 20 batches of 50 — the old protocol" in paths["md"].read_text()


@pytest.mark.parametrize("kwargs, flag", [
    (dict(bn_images="all", bn_batches=20), "--bn-images"),       # both protocols at once
    (dict(bn_images="many"), "--bn-images"), (dict(bn_images=0), "--bn-images"),
    (dict(bn_pass_size=0), "--bn-pass-size"), (dict(bn_batches=-1), "--bn-batches"),
    (dict(bn_batches=2, bn_batch_size=0), "--bn-batch-size")])
def test_bad_re_estimation_settings_are_refused_before_any_measurement(fakes, kwargs, flag):
    with pytest.raises(UserError) as err:
        experiments.cross_robustness({"fragile": FakeModel(0.2)}, PERTS, DATA, progress=False,
                                     **kwargs)
    assert err.value.flag == flag
    assert not fakes["score"] and not fakes["walk"]


def test_rows_and_format(table):
    rows = table.rows
    assert [r["regime"] for r in rows] == ["fragile", "robust", "broken"]
    r = rows[1]
    assert r["addnorm"] is None and r["addnorm_beyond_grid"] is True
    assert r["addnorm_grid_edge"] == 2.0
    assert rows[0]["act-add"] == pytest.approx(0.2)
    p = {q.name: q for q in PERTS}
    assert experiments.format_cell(table.cell("robust", "addnorm"), p["addnorm"]) == "> 2"
    assert experiments.format_cell(table.cell("robust", "multunif"), p["multunif"]) == "< 0.05"
    assert experiments.format_cell(table.cell("robust", "act-add"), p["act-add"]) == "> 1e+03"
    assert experiments.format_cell(table.cell("broken", "addnorm"), p["addnorm"]) == "—"
    assert experiments.format_cell(table.cell("fragile", "multunif"), p["multunif"]) == "0.75"


def test_write_csv_and_markdown(table, tmp_path):
    paths = experiments.write_cross_table(table, tmp_path / "out")
    assert paths["csv"].name == "cross_robustness.csv"
    assert paths["md"].name == "cross_robustness.md"
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    by = {r["regime"]: r for r in rows}
    assert float(by["fragile"]["addnorm"]) == pytest.approx(0.2)
    assert by["fragile"]["addnorm_beyond_grid"] == "0"
    # beyond the grid: empty value and the flag
    assert by["robust"]["addnorm"] == "" and by["robust"]["addnorm_beyond_grid"] == "1"
    assert by["robust"]["multunif"] == "" and by["robust"]["multunif_beyond_grid"] == "1"
    assert float(by["robust"]["multunif_grid_edge"]) == 0.05
    # undefined: empty value, no flag
    assert by["broken"]["act-add"] == "" and by["broken"]["act-add_beyond_grid"] == "0"
    md = paths["md"].read_text()
    lines = {line.split("|")[1].strip(): line for line in md.splitlines()
             if line.startswith("| ") and "---" not in line}
    assert "weights: AddNorm σ" in lines["training regime"]
    robust = [c.strip() for c in lines["robust"].split("|")[1:-1]]
    assert robust == ["robust", "90.00", "> 2", "< 0.05", "> 1e+03"]
    fragile = [c.strip() for c in lines["fragile"].split("|")[1:-1]]
    assert fragile == ["fragile", "90.00", "0.2", "0.75", "0.2"]
    assert lines["broken"].count("—") == 3
    assert "midpoint" in md and "re-estimated with the noise on" in md and "4 noisy passes" in md


def test_validation():
    with pytest.raises(ValueError, match="method"):
        Regime("x", method="magic")
    with pytest.raises(ValueError, match="noise"):
        Regime("x", method="noisy")
    with pytest.raises(ValueError, match="sigma > 0"):
        Regime("x", method="noisy", noise="additive")
    with pytest.raises(ValueError, match="family"):
        Perturbation("x", "bias", "addnorm", (0.1,))
    with pytest.raises(ValueError, match="unknown distortion"):
        Perturbation("x", "weight", "blur", (0.1,))
    with pytest.raises(ValueError, match="at least one"):
        experiments.cross_robustness({}, PERTS, DATA, progress=False)
    with pytest.raises(ValueError, match="differ"):
        experiments.cross_robustness({"a": FakeModel(1.0)}, [PERTS[0], PERTS[0]], DATA,
                               progress=False)
    assert [p.name for p in experiments.default_perturbations(quick=True)] == \
        ["addnorm", "multunif", "act-additive", "act-multiplicative"]
    assert [r.name for r in experiments.DEFAULT_REGIMES] == \
        ["tr-none-nc", "tr-sign-c", "tr-stoch-c", "noisy-additive", "noisy-multiplicative"]


# ---------------------------------------------------------------------------
# End to end, tiny: the real training, scoring and walking fit together
# ---------------------------------------------------------------------------
def tiny_data(n_train=160, n_test=60):
    x, y = synthetic_classification(n_train + n_test, shape=(1, 4, 4), seed=3, noise=0.5)
    return CrossData(ArraySource(x[:n_train], y[:n_train]), ArraySource(x[n_train:], y[n_train:]),
                     10, dataset="synthetic")


def test_end_to_end_tiny(tmp_path):
    data = tiny_data()
    models = {}
    # a noisy regime trains on the sources directly; an Algorithm-1 regime goes through
    # training.train (which loads its dataset by name: the stock synthetic set)
    models["noisy-additive"] = experiments.train_regime(
        Regime("noisy-additive", "noisy", noise="additive:sigma=0.2"), data, epochs=1,
        batch_size=32)
    synth = experiments.load_data("synthetic", train_subset=100, test_subset=40)
    sign = experiments.train_regime(Regime("tr-sign-c", "algorithm1", "sign", 0.5), synth, epochs=1,
                              batch_size=50, out_dir=tmp_path / "runs")
    assert (tmp_path / "runs" / "tr-sign-c" / "checkpoint.npz").is_file()
    assert (tmp_path / "runs" / "tr-sign-c" / experiments.REGIME_MARKER).is_file()
    assert not sign.training and len(synth.train) == 100 and len(synth.test) == 40
    perts = [Perturbation("addnorm", "weight", "addnorm", (0.5, 1.0)),
             Perturbation("multunif", "weight", "multunif", (0.5,), symbol="γ", worse="down"),
             Perturbation("act-mul", "activation", "multiplicative", (0.1, 1.0, 10.0))]
    logged = []
    bn = models["noisy-additive"].bn1
    before = bn.running_mean.copy(), bn.running_var.copy()
    table = experiments.cross_robustness(models, perts, data, draws=1, bn_pass_size=80,
                                         log=logged.append)      # exact, as the sweeps
    assert len(logged) == 3 and len(table.cells) == 3
    # recalibrated for the measurement, the trained statistics put back afterwards
    assert (bn.running_mean == before[0]).all() and (bn.running_var == before[1]).all()
    assert table.settings["recalibrate_bn"] is True
    for p in perts:
        cell = table.cell("noisy-additive", p.name)
        assert len(cell.levels) == len(cell.accuracies) >= len(p.levels)
        assert all(0.0 <= a <= 1.0 for a in cell.accuracies)
        assert cell.level is not None or cell.beyond_grid or cell.note
    paths = experiments.write_cross_table(table, tmp_path)
    assert paths["csv"].read_text().startswith("regime,label,clean_accuracy,bn_reestimation,"
                                               "addnorm,")
    assert table.rows[0]["bn_reestimation"] == "exact over all 160 training images, passes of 80"
    assert table.settings["bn_images"] == 160 and table.settings["bn_pass_size"] == 80


def test_train_regime_replaces_only_its_own_folders(tmp_path):
    """A folder that train_regime did not make is never deleted: refused before training."""
    synth = experiments.load_data("synthetic", train_subset=60, test_subset=20)
    regime = Regime("tr-none-nc", "algorithm1", "none", "NC")
    mine = tmp_path / "tr-none-nc"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own run")
    with pytest.raises(UserError, match="not made by train_regime"):
        experiments.train_regime(regime, synth, epochs=1, batch_size=30, out_dir=tmp_path)
    assert (mine / "notes.txt").read_text() == "my own run"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # its own folder (the marker) is replaced by a fresh run
    (mine / "notes.txt").unlink()
    experiments.train_regime(regime, synth, epochs=1, batch_size=30, out_dir=tmp_path)
    (mine / "stale.txt").write_text("left by the previous run")
    experiments.train_regime(regime, synth, epochs=1, batch_size=30, out_dir=tmp_path)
    assert not (mine / "stale.txt").exists() and (mine / experiments.REGIME_MARKER).is_file()


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
def assert_png(path, min_bytes=8_000):
    """A PNG that decodes, has a sensible size and is not one flat colour.

    path: a PNG file, or the matplotlib Figure a plot function returned (it is drawn to a
    PNG in memory, and the file it was saved to is checked too)."""
    import io
    from matplotlib.figure import Figure
    from matplotlib.image import imread
    if isinstance(path, Figure):
        buf = io.BytesIO()
        path.savefig(buf, format="png", dpi=110)
        data, path = buf.getvalue(), "the returned Figure"
        image = imread(io.BytesIO(data), format="png")
    else:
        data = path.read_bytes()
        image = imread(str(path))
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is suspiciously small ({len(data)} bytes)"
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert float(image[..., :3].std()) > 0.02, f"{path} is (nearly) blank"


def walk_rows():
    names = ["input", "fc1", "relu1", "fc2"]
    rows = []
    for kind in ("additive", "multiplicative"):
        for i, name in enumerate(names):
            for s in (0.01, 0.1, 1.0, 10.0, 100.0):
                rows.append({"site": i, "site_name": name, "noise": kind, "sigma": s,
                             "accuracy": fake_accuracy(FakeModel(0.5 * (i + 1)), s),
                             "bn_protocol": "running", "repeats": 1, "seed": 0})
    return rows


def test_accuracy_vs_sigma_png(tmp_path):
    assert_png(reporting.accuracy_vs_sigma(walk_rows(), tmp_path / "acc.png"))
    assert_png(tmp_path / "acc.png")                 # and the file it was saved to
    rows = [dict(r, repeats=n) for n in (1, 4) for r in walk_rows()
            if r["site"] == 1 and r["noise"] == "additive"]
    assert_png(reporting.accuracy_vs_sigma({"σ at fc1": rows}, tmp_path / "rep.png",
                                          lines_by="repeats"))
    with pytest.raises(ValueError, match="no rows"):
        reporting.accuracy_vs_sigma([], tmp_path / "none.png")


def test_midpoints_plot_png_with_beyond_grid(tmp_path):
    from tinyproj.walking_noise import midpoints_table
    rows = walk_rows()
    rows = [dict(r, accuracy=0.9) if r["site"] == 3 else r for r in rows]   # never breaks
    table = midpoints_table(rows, chance=0.1)
    assert any(t["beyond_grid"] for t in table)
    add = [t for t in table if t["noise"] == "additive"]
    mul = [t for t in table if t["noise"] == "multiplicative"]
    assert_png(reporting.midpoints_plot({"additive": add, "multiplicative": mul},
                                       tmp_path / "mu.png", grid_max=100.0))
    assert_png(reporting.midpoints_plot(add, tmp_path / "mu1.png"))


def test_activation_histogram_png(tmp_path):
    rng = backend.make_rng(0)
    clean = backend.xp().maximum(rng.standard_normal((64, 32)), 0)
    noisy = clean + 0.3 * rng.standard_normal((64, 32))
    assert_png(reporting.activation_histogram(clean, noisy, tmp_path / "h.png", site="relu1",
                                             noise="additive σ = 0.3"))
    with pytest.raises(ValueError, match="same"):
        reporting.activation_histogram(clean, noisy[:3], tmp_path / "bad.png")


def test_weight_stats_plot_png_from_train_noisy(tmp_path):
    from tinyproj.walking_noise import train_noisy
    data = tiny_data(96, 32)
    _, rows = train_noisy("mlp_tfc", data.train, "multiplicative:sigma=0.3", epochs=2,
                          batch_size=32, test_source=data.test)
    assert_png(reporting.weight_stats_plot(rows, tmp_path / "w.png"))
    _, clamped = train_noisy("mlp_tfc", data.train, "additive:sigma=0.3", epochs=1,
                             batch_size=32, clamp=0.05)
    assert_png(reporting.weight_stats_plot({"free": rows, "clamped": clamped},
                                          tmp_path / "w2.png", stats=["mean_abs", "max_abs"]))
    with pytest.raises(ValueError, match="none of"):
        reporting.weight_stats_plot([{"epoch": 1}], tmp_path / "bad.png")


def test_cross_heatmap_png(table, tmp_path):
    assert_png(reporting.cross_heatmap(table, tmp_path / "experiments.png"))
    assert_png(reporting.cross_heatmap(table, tmp_path / "rel.png", relative_to="fragile"))
    with pytest.raises(ValueError, match="not a regime"):
        reporting.cross_heatmap(table, tmp_path / "bad.png", relative_to="nobody")
