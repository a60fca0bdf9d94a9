"""benchmarks/torch_step_profile.py: its ATen op names land in the right groups (a backward op
whose name contains the forward's must not be counted as forward), and a tiny run prints every
group with a total that is their sum."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import torch_step_profile as tsp  # noqa: E402


@pytest.mark.parametrize("name, group", [
    ("aten::convolution_backward", "convolution backward"),
    ("aten::convolution", "convolution forward"),
    ("aten::mkldnn_convolution", "convolution forward"),
    ("aten::max_pool2d_with_indices_backward", "max-pool"),
    ("aten::native_batch_norm_backward", "batch norm"),
    ("aten::threshold_backward", "ReLU"),
    ("aten::mm", "linear layers"),
    ("Optimizer.step#Adam.step", "Adam"),
    ("aten::where", "the rest (Sign, clip, loss, autograd, allocation)"),
])
def test_ops_are_grouped_by_what_they_compute(name, group):
    assert tsp.group_of(name) == group


@pytest.mark.numpy_only("profiles PyTorch's CPU step")
def test_a_tiny_profile_prints_every_group_and_their_sum(capsys):
    pytest.importorskip("torch")
    assert tsp.main(["--width", "0.0625", "--batch", "4", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    rows = dict((name.strip(), float(ms)) for ms, name in
                re.findall(r"^\s+([\d.]+)\s+(\S.*)$", out, flags=re.M))
    assert {"convolution forward", "convolution backward", "batch norm", "total"} <= set(rows)
    parts = sum(v for k, v in rows.items() if k != "total")
    assert abs(parts - rows["total"]) <= 0.01 * len(rows)
