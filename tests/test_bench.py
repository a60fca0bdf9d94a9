"""`tinyproj bench` end to end on tiny cases (speed itself is never asserted here)."""
import json

import pytest

from tinyproj.bench import suite, torch_ref, worker
from tinyproj.cli import main


def test_bench_runs_workers_and_reports_every_number():
    lines = []
    result = suite.run(repeats=2, batch=2, only=["conv", "step"], layers=[(3, 4, 8)],
                       steps=[(0.0625, "auto"), (0.0625, "reference")], out=lines.append)
    (conv,) = result["conv"]
    assert conv["label"].startswith("3→4") and len(conv["tinyproj_times_s"]) == 2
    lo, hi = conv["tinyproj_iqr_s"]
    assert [lo, hi] == sorted(conv["tinyproj_times_s"])       # 2 runs: their range
    assert conv["tinyproj_s"] > 0 and conv["flops"] == 3 * 2 * 2 * 4 * 3 * 9 * 8 * 8
    assert conv["tinyproj_peak_mb"] >= 0
    auto, ref = result["step"]
    assert (auto["kernels"], ref["kernels"]) == ("auto", "reference")
    assert "torch_s" not in ref                    # PyTorch has no "reference kernels" row
    if result["torch"]:
        assert conv["time_ratio"] == pytest.approx(conv["tinyproj_s"] / conv["torch_s"])
        assert auto["torch_peak_mb"] > 0
    text = "\n".join(lines)
    assert "GFLOP/s" in text and "matrix product runs at" in text
    json.dumps(result)                             # everything is plain data


def test_worker_rejects_an_unknown_case():
    with pytest.raises(KeyError):
        worker._build({"framework": "tinyproj", "case": "pool"})


@pytest.mark.parametrize("argv, flag", [(["--only", "conv,speed"], "--only"),
                                        (["--repeats", "0"], "--repeats"),
                                        (["--batch", "0"], "--batch")])
def test_bench_cli_rejects_bad_flags_before_running_anything(argv, flag, monkeypatch, capsys):
    monkeypatch.setattr(suite, "run", lambda **kw: pytest.fail("ran despite a bad flag"))
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert flag in err and "error:" in err


def test_bench_cli_writes_the_json_it_was_given(monkeypatch, tmp_path):
    seen = {}

    def fake_run(**kw):
        seen.update(kw)
        return {"step": [], "repeats": kw["repeats"]}
    monkeypatch.setattr(suite, "run", fake_run)
    out = tmp_path / "bench.json"
    assert main(["bench", "--json", str(out), "--only", "step"]) == 0
    assert seen["repeats"] == suite.DEFAULT_REPEATS and seen["only"] == ["step"]
    assert json.loads(out.read_text()) == {"step": [], "repeats": suite.DEFAULT_REPEATS}
    assert main(["bench", "--json", str(tmp_path)]) == 2          # a folder is refused


class _FakeWorker:
    """Stands in for a worker process: answers "time" from a fixed list of seconds."""
    times = {}

    def __init__(self, spec, env_extra=None):
        self.left = list(self.times[spec["framework"]])
        self.ready = {"ready": True}

    def ask(self, command):
        if command == "time":
            return {"seconds": self.left.pop(0)}
        return {"peak_mb": 10.0 if command == "memory" else None}

    def close(self):
        pass


def test_rows_carry_medians_spreads_and_paired_ratios(monkeypatch):
    # tinyproj 1..5 s, PyTorch always 2 s except one slow turn: the medians ignore the outlier,
    # the IQRs show the spread, and the per-turn ratios pair each run with its partner
    _FakeWorker.times = {"tinyproj": [3.0, 1.0, 2.0, 5.0, 4.0], "torch": [2.0, 2.0, 2.0, 8.0, 2.0]}
    monkeypatch.setattr(suite, "Worker", _FakeWorker)
    row = suite._row("x", {"case": "conv"}, 5, True, flops=6e9, rate=100.0)
    assert row["tinyproj_s"] == 3.0 and row["torch_s"] == 2.0
    assert row["tinyproj_iqr_s"] == [2.0, 4.0] and row["torch_iqr_s"] == [2.0, 2.0]
    assert row["paired_ratios"] == [1.5, 0.5, 1.0, 0.625, 2.0]
    assert row["paired_ratio_iqr"] == [0.625, 1.5]
    assert row["time_ratio"] == 1.5 and row["memory_ratio"] == 1.0
    text = suite._format(row)
    assert "3000.0 [2000.0–4000.0]" in text and "1.50 [0.62–1.50]" in text
    json.dumps(row)


def test_quartiles_of_few_values():
    assert suite.quartiles([1.0]) == [1.0, 1.0]
    assert suite.quartiles([3.0, 1.0, 2.0]) == [1.0, 3.0]            # the range
    assert suite.quartiles([4.0, 1.0, 3.0, 2.0, 5.0]) == [2.0, 4.0]


def test_torch_reference_matches_tinyproj_model_and_loss():
    torch = pytest.importorskip("torch")
    import numpy as np

    import tinyproj.functional as F
    from tinyproj import models
    tiny = models.bc_cifar10(width=0.0625)
    ours = [tuple(p.shape) for _, p in tiny.named_parameters()]
    theirs = [tuple(p.shape) for p in torch_ref.bc_cifar10(0.0625).parameters()]
    assert ours == theirs                          # the same layers in the same order
    scores = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    labels = np.arange(6) % 10
    want = F.square_hinge_loss(scores, labels).item()
    got = torch_ref.square_hinge_loss(torch.tensor(scores), torch.tensor(labels)).item()
    assert got == pytest.approx(want, rel=1e-6)


def test_torch_sign_step_is_tinyprojs_algorithm1_step():
    # the benchmark compares like with like: the same weights give the same step
    torch = pytest.importorskip("torch")
    import numpy as np

    import tinyproj.functional as F
    from tinyproj import algorithm1, backend, clipping, models, optim
    rng = backend.make_rng(0)
    model = models.bc_cifar10(width=0.0625, rng=rng)
    model.train()
    tmodel = torch_ref.bc_cifar10(0.0625)
    tmodel.train()
    with torch.no_grad():
        for (_, p), tp_ in zip(model.named_parameters(), tmodel.parameters()):
            tp_.copy_(torch.tensor(backend.to_numpy(p.data)))
    bounds = clipping.clip_bounds(model, 0.5)
    x = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = np.arange(8) % 10
    opt = optim.Adam(model.parameters(), lr=0.003)
    loss = algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign", bounds, rng)
    step = torch_ref.SignStep(tmodel, list(bounds.values()))
    tloss = float(step(torch.tensor(x), torch.tensor(y)))
    assert tloss == pytest.approx(loss, rel=1e-4)
    for (name, p), tp_ in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(tp_.detach().numpy(), p.data, rtol=1e-3, atol=1e-5,
                                   err_msg=name)


def test_bench_cli_json_replaces_only_an_earlier_bench_result(monkeypatch, tmp_path, capsys):
    def fake_run(**kw):
        return {"machine": {"cpu": "x"}, "matmul_gflops": 1.0, "batch": kw["batch"],
                "repeats": kw["repeats"], "torch": False, "conv": [], "step": [],
                "first_step_s": None}
    monkeypatch.setattr(suite, "run", lambda **kw: pytest.fail("ran before refusing"))
    mine = tmp_path / "results.json"
    for text in ('{"my": "numbers"}\n', "not json at all\n", '{"step": [], "repeats": 3}\n'):
        mine.write_text(text)
        assert main(["bench", "--json", str(mine)]) == 2              # refused before running
        err = capsys.readouterr().err
        assert "--json" in err and str(mine) in err
        assert mine.read_text() == text                               # kept as it was
    earlier = tmp_path / "bench.json"
    earlier.write_text(json.dumps(fake_run(batch=50, repeats=1)))
    monkeypatch.setattr(suite, "run", fake_run)
    assert main(["bench", "--json", str(earlier), "--batch", "7"]) == 0
    assert json.loads(earlier.read_text())["batch"] == 7               # an earlier result: replaced
    assert suite.is_result_file(earlier) and not suite.is_result_file(mine)
