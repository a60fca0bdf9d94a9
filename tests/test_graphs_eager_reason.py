"""Steps that cannot be captured as a CUDA graph, known before they run (tinyproj/graphs.py).

A projection parameter written ``U(..)`` other than Power's β (``stochm:gamma=U(..)``,
``addnorm:sigma=U(..)``, ``multunif:gamma=U(..)``) is drawn and read back to the host every
minibatch (``projections.Uniform.draw``) and handed to the kernels as a launch argument: a
graph would freeze it. ``Projection.eager_reason()`` says so, and a StepGraph given that
reason runs every step eagerly — on the stand-in without the capture check, which would refuse
the deliberate read-back — and prints the reason once.
"""
import numpy as np
import pytest

from tinyproj import backend, graphs, projections, standin
from tinyproj.runs import training
from tinyproj.runs.config import make_config


@pytest.mark.parametrize("spec, param", [("stochm:gamma=U(0.5,1)", "gamma=U(0.5,1)"),
                                         ("addnorm:sigma=U(0,0.1)", "sigma=U(0,0.1)"),
                                         ("multunif:gamma=U(0.1,0.2)", "gamma=U(0.1,0.2)")])
def test_a_host_drawn_uniform_parameter_is_a_reason_to_run_eagerly(spec, param):
    reason = projections.parse(spec).eager_reason()
    assert reason.startswith(spec) and param in reason
    assert "read back to the host" in reason and "eagerly" in reason


@pytest.mark.parametrize("spec", ["power:beta=U(0,2)", "power:beta=0.5", "sign", "stoch",
                                  "stochm:gamma=0.5", "none"])
def test_fixed_parameters_and_powers_device_beta_need_no_eager_step(spec):
    assert projections.parse(spec).eager_reason() is None


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_a_step_with_an_eager_reason_runs_eagerly_and_says_why_once(on_standin, mode):
    x = standin.asarray(np.arange(3.0))
    said, calls = [], []

    def step():                                   # reads back on purpose, as Uniform.draw does
        calls.append(float(x.sum().item()))
        return (x * 2,)

    graph = graphs.capture_step(step, mode=mode, log=said.append,
                                eager_reason="a U(..) parameter is drawn on the host")
    for _ in range(4):
        (out,) = graph()
    assert graph.kind == "eager" and graph.replays == 0 and len(calls) == 4
    assert said == ["CUDA graph: a U(..) parameter is drawn on the host."]
    assert np.array_equal(backend.to_numpy(out), [0.0, 2.0, 4.0])
    quiet = []
    graphs.capture_step(step, mode="off", log=quiet.append, eager_reason="unused")()
    assert quiet == []                            # --graph off: nothing to explain


def _cfg(projection):
    return make_config("tr-sign-c", dataset="synthetic", model="bc_cifar10", width=1 / 16,
                       train_subset=70, val_size=0, test_subset=20, batch_size=20, epochs=1,
                       bn_batches=1, eval_batch_size=20, out=None, projection=projection,
                       test_projections=["none"], bn_reestimate=False)


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_training_with_stochm_gamma_uniform_falls_back_with_the_reason(on_standin, mode):
    """The training loop's step with ``stochm:gamma=U(0.5,1)`` (runs/training.py's
    ``_device_step`` hands the projection's eager reason to ``capture_step``): the same
    weights as ``--graph off``, and the reason printed once."""
    spec = "stochm:gamma=U(0.5,1)"
    results = {}
    for graph in ("off", mode):
        said = []
        model, _ = training.train(_cfg(spec), progress=False, log=said.append, graph=graph)
        results[graph] = [backend.to_numpy(p.data) for p in model.parameters()]
        results[graph + " said"] = [line for line in said if "CUDA graph" in line]
    assert results["off said"] == []
    assert len(results[mode + " said"]) == 1 and spec in results[mode + " said"][0]
    for a, b in zip(results["off"], results[mode]):
        assert np.array_equal(a, b)
