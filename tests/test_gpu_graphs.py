"""CUDA graphs on a real GPU (issue 12, item 1): eager and replayed steps give the same weights.

Skipped without CuPy and a GPU (``pytest -m gpu``; benchmarks/gpu_check.sh runs them). The
CPU side — per-step scalars in device memory, nothing that syncs or copies inside the step —
is tests/test_graphs.py.
"""
import numpy as np
import pytest

from tinyproj import backend, graphs
from tinyproj.runs import training
from tinyproj.runs.config import make_config

pytestmark = pytest.mark.gpu


def _train(projection, graph, made, monkeypatch, **extra):
    real = graphs.capture_step

    def recording(*args, **kwargs):
        step = real(*args, **kwargs)
        made.append(step)
        return step

    monkeypatch.setattr(graphs, "capture_step", recording)
    settings = dict(dataset="synthetic", model="bc_cifar10", width=1 / 16, train_subset=230,
                    val_size=0, test_subset=50, batch_size=50, epochs=2, bn_batches=1,
                    eval_batch_size=50, out=None, projection=projection,
                    test_projections=["none"], bn_reestimate=False)
    settings.update(extra)
    model, rows = training.train(make_config("tr-sign-c", **settings), progress=False,
                                 log=lambda *a: None, graph=graph)
    return [backend.to_numpy(p.data) for p in model.parameters()], rows


@pytest.mark.parametrize("projection", ["none", "sign", "stoch", "stochm:gamma=0.5",
                                        "power:beta=U(0,2)"])
def test_replayed_steps_give_the_weights_of_eager_steps(on_cupy, monkeypatch, projection):
    """Two epochs of 230 images in batches of 50: 4 full batches (2 eager warm-up steps, the
    capture, replays) and a partial one (eager) per epoch; an evaluation in between."""
    eager_made, graph_made = [], []
    eager, rows_e = _train(projection, "off", eager_made, monkeypatch)
    replayed, rows_g = _train(projection, "on", graph_made, monkeypatch)
    assert graph_made[0].kind == "cuda" and graph_made[0].replays >= 4, graph_made[0].reasons
    for a, b in zip(eager, replayed):
        np.testing.assert_array_equal(a, b)
    assert rows_e[-1]["train_loss"] == rows_g[-1]["train_loss"]


def test_a_syncing_step_falls_back_to_eager_with_the_reason_once(on_cupy):
    import cupy
    said, calls = [], []
    x = cupy.ones(4, dtype=cupy.float32)

    def step():
        calls.append(1)
        y = x * 2
        y.sum().item()                                     # a read-back: refused in a capture
        return (y,)

    graph = graphs.capture_step(step, mode="on", warmup=1, log=said.append)
    for _ in range(4):
        graph()
    assert graph.kind == "eager" and len(said) == 1 and "capture" in said[0]
    assert len(calls) == 5                                 # the failed capture ran it once more


def test_a_captured_step_replays_device_state_it_advances(on_cupy):
    """The simplest graph: a counter in device memory, advanced by the step."""
    import cupy
    counter = cupy.zeros((), dtype=cupy.int64)

    def step():
        counter[...] += 1
        return (counter * 10,)

    graph = graphs.capture_step(step, mode="on", warmup=1, log=lambda *a: None)
    outs = [int(graph()[0].get()) for _ in range(5)]
    assert outs == [10, 20, 30, 40, 50] and graph.kind == "cuda" and graph.replays == 3
