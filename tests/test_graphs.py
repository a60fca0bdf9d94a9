"""CUDA-graph readiness of the training step, checked on the CPU (issue 12, item 1).

A replayed graph runs the captured kernels with the captured arguments, so every per-step
number must live in device memory and nothing in the step may sync or copy (tinyproj/graphs.py).
Here, without a GPU:

* the per-step scalars in device memory give the eager results they replace, bit for bit
  (Adam's lr, t and bias corrections; SGD's lr; Power's β; the clip bounds' table);
* the Philox key moves on the device (one launch, no copy), and NumPy keeps its fresh draws;
* the stand-in's capture check and graph: the ``bc_cifar10`` step of the training loop (width
  1/16) under every training projection makes no sync and no copy inside the checked region,
  and replaying its recording (the stand-in's CUDA graph: same kernels, same arguments, same
  memory) ends at the weights of eager steps; a number frozen at capture is caught that way;
  a syncing op is caught with its name; the fallback reason is printed once.

The GPU side (eager and replayed steps give the same weights) is tests/test_gpu_graphs.py.
"""
import math

import numpy as np
import pytest

import tinyproj.functional as F
from tinyproj import algorithm1, backend, clipping, graphs, kernels, models, optim, standin
from tinyproj.kernels import reference, reference_device
from tinyproj.projections import power_device, table1
from tinyproj.runs import training
from tinyproj.runs.config import make_config


def _dev(a):
    return standin.asarray(a)


# ---------------------------------------------------------------------------
# Per-step scalars in device memory: the same numbers as before
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["reference_device", "host"])
def test_adam_with_device_scalars_equals_adam_with_arguments_bit_for_bit(module):
    rng = np.random.default_rng(0)
    shape = 1000
    w0, m0, v0 = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    v0 = np.abs(v0)
    b1, b2, eps = 0.9, 0.999, 1e-8
    w1, m1, v1 = w0.copy(), m0.copy(), v0.copy()
    w2, m2, v2 = w0.copy(), m0.copy(), v0.copy()
    if module == "host":
        from tinyproj.kernels import host
        if not host.available():
            pytest.skip(f"no host build: {host.unavailable_reason()}")
        kernel = host.get("adam_update_scalars")
    else:
        kernel = reference_device.adam_update_scalars
    for t, lr in [(1, 3e-3), (2, 3e-3), (7, 1.7e-3), (500, 2e-6)]:
        g = rng.standard_normal(shape).astype(np.float32)
        reference.adam_update(w1, g, m1, v1, lr, b1, b2, eps, t)
        scalars = np.array([lr, 1.0 - b1 ** t, 1.0 - b2 ** t]).astype(np.float32)
        kernel(w2, g, m2, v2, scalars, b1, b2, eps)
        for a, b in [(w1, w2), (m1, m2), (v1, v2)]:
            assert np.array_equal(a, b), t


def test_sgd_with_device_lr_equals_sgd_with_arguments():
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal(50).astype(np.float32)
    w2, buf1, buf2 = w1.copy(), np.zeros(50, np.float32), np.zeros(50, np.float32)
    for step, lr in enumerate([0.1, 0.05, 0.05]):
        g = rng.standard_normal(50).astype(np.float32)
        reference.sgd_update(w1, g, buf1, lr, 0.9, 1e-4, True, first=step == 0)
        reference_device.sgd_update_scalars(w2, g, buf2, np.array([lr], np.float32), 0.9, 1e-4,
                                            True, first=step == 0)
        assert np.array_equal(w1, w2) and np.array_equal(buf1, buf2)


def _adam_run(steps, lrs, device):
    rng = np.random.default_rng(3)
    from tinyproj.tensor import Tensor
    values = [rng.standard_normal((4, 5)).astype(np.float32),
              rng.standard_normal(5).astype(np.float32)]
    params = [Tensor(_dev(v) if device else v.copy(), requires_grad=True) for v in values]
    opt = optim.Adam(params, lr=lrs[0])
    for step in range(steps):
        opt.lr = lrs[step]
        for q in params:
            g = rng.standard_normal(q.shape).astype(np.float32)
            q.grad = _dev(g) if device else g
        opt.step()
    return opt, [backend.to_numpy(q.data) for q in params]


def test_adam_on_a_device_matches_numpy_bit_for_bit_across_lr_changes(on_standin):
    lrs = [3e-3, 3e-3, 1e-3, 1e-3, 5e-4, 2e-4]
    _, host = _adam_run(6, lrs, device=False)
    opt, dev = _adam_run(6, lrs, device=True)
    for a, b in zip(host, dev):
        assert np.array_equal(a, b)
    scalars = opt.groups[0].step_scalars
    assert scalars.host_t == 6 and scalars.t.item() == 6
    assert scalars.values.get()[0] == np.float32(2e-4)


def test_adam_device_t_follows_a_loaded_state(on_standin):
    """A resumed optimizer: the host t (from the checkpoint) is written to the device once."""
    opt, _ = _adam_run(3, [1e-3] * 3, device=True)
    state = opt.state_dict()
    opt2, _ = _adam_run(1, [1e-3], device=True)
    opt2.load_state_dict(state)
    for q in opt2.params:
        q.grad = q.data * 0 + 1
    opt2.step()
    assert opt2.groups[0].step_scalars.t.item() == 4
    assert opt2.state[0]["step"] == 4


def test_the_lr_is_written_only_when_it_changes(on_standin):
    opt, _ = _adam_run(2, [1e-3, 1e-3], device=True)
    with standin.counting() as same:
        opt.write_step_scalars()
    opt.lr = 2e-3
    with standin.counting() as changed:
        opt.write_step_scalars()
    assert same.launches == 0 and (changed.launches, changed.copies, changed.syncs) == (1, 0, 0)


def test_replayed_bookkeeping_advances_the_host_counters(on_standin):
    opt, _ = _adam_run(2, [1e-3, 1e-3], device=True)
    saved = opt.host_counters()
    opt.replayed()
    assert opt.t == 3 and all(s["step"] == 3 for s in opt.state)
    assert opt.groups[0].step_scalars.host_t == 3
    opt.set_host_counters(saved)
    assert opt.t == 2 and all(s["step"] == 2 for s in opt.state)


def test_power_with_beta_on_the_device_equals_power_bit_for_bit(on_standin):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    for beta in [0.01, 0.37, 0.999, 1.5, 1.99]:
        want = table1.power(w, beta)
        got = power_device.power(_dev(w), _dev(np.asarray(beta, dtype=np.float32)))
        assert np.array_equal(got.get(), want), beta


def test_power_sample_keeps_beta_on_the_device_and_draws_what_the_host_path_draws(on_standin):
    from tinyproj import projections
    spec = projections.parse("power:beta=U(0,2)")
    w = _dev(np.ones(3, np.float32))
    a, b = backend.make_rng(5), backend.make_rng(5)
    with standin.counting() as c:
        sampled = power_device.sample(spec, a, w)
    assert (c.syncs, c.copies) == (0, 0) and isinstance(sampled, power_device.DevicePower)
    host = spec.sample(b)                                  # the old path: the draw read back
    assert sampled.beta.get() == np.float32(host.params["beta"])


def test_the_clip_table_is_updated_in_place(on_standin):
    model = models.bc_cifar10(width=1 / 16)
    opt = optim.Adam(model.parameters(), lr=1e-3)         # the flat group
    group = opt.groups[0]
    algorithm1.write_clip_bounds(model, clipping.clip_bounds(model, 0.5))
    table = group._device_tables["clip_bounds"][1]
    with standin.counting() as c:
        algorithm1.write_clip_bounds(model, clipping.clip_bounds(model, 0.7))
    assert group._device_tables["clip_bounds"][1] is table          # the same array
    assert (c.syncs, c.copies) == (0, 0) and c.launches == table.size
    first = next(iter(algorithm1.weight_params(model).values()))
    assert math.isclose(float(table.get()[0]), 0.7 * clipping.glorot_std(first.shape),
                        rel_tol=1e-6)


# ---------------------------------------------------------------------------
# The Philox key moves on the device
# ---------------------------------------------------------------------------
def test_random_key_on_a_device_advances_its_stream_there(on_standin):
    rng = backend.make_rng(6)
    like = _dev(np.zeros(2, np.float32))
    first = kernels.random_key(rng, like).get()
    with standin.counting() as c:
        second = kernels.random_key(rng, like)
    assert (c.launches, c.syncs, c.copies) == (1, 0, 0)
    got = second.get()
    assert got[0] == first[0] and got[1] == first[1] + 1
    other = kernels.random_key(backend.make_rng(7), like).get()
    assert other[0] != first[0]                            # one key per generator


def test_random_key_on_numpy_is_a_fresh_draw_from_the_generator():
    a, b = np.random.default_rng(8), np.random.default_rng(8)
    like = np.zeros(2, np.float32)
    for _ in range(2):
        assert np.array_equal(kernels.random_key(a, like),
                              b.integers(0, 2 ** 62, size=2, dtype=np.int64))


# ---------------------------------------------------------------------------
# The capture check on the stand-in
# ---------------------------------------------------------------------------
def _cfg(preset, **extra):
    settings = dict(dataset="synthetic", model="bc_cifar10", width=1 / 16, train_subset=60,
                    val_size=0, test_subset=20, batch_size=20, epochs=1, bn_batches=1,
                    eval_batch_size=20, out=None)
    settings.update(extra)
    return make_config(preset, **settings)


def _quiet(*a):
    pass


def _train_weights(mode, monkeypatch, made=None, **extra):
    """Two epochs of 70 images in batches of 20: per epoch 3 full batches and a partial one
    (eager), an evaluation between them. With a graph: 2 eager warm-up steps, the capture,
    then replays (3 in all, across the epoch's end: a new order, the offset reset)."""
    real = graphs.capture_step

    def recording(*args, **kwargs):
        step = real(*args, **kwargs)
        if made is not None:
            made.append(step)
        return step

    monkeypatch.setattr(graphs, "capture_step", recording)
    cfg = _cfg("tr-sign-c", train_subset=70, epochs=2, test_projections=["none"],
               bn_reestimate=False, **extra)
    model, rows = training.train(cfg, progress=False, log=_quiet, graph=mode)
    return [backend.to_numpy(p.data) for p in model.parameters()], rows


@pytest.mark.parametrize("projection", ["none", "sign", "stoch", "stochm:gamma=0.5",
                                        "power:beta=U(0,2)"])
def test_replayed_steps_give_eager_weights_and_nothing_syncs_or_copies_inside(on_standin,
                                                                             monkeypatch,
                                                                             projection):
    """The training loop's step (gather at the device offset, project, forward, backward,
    update, clip, error count) captured by the stand-in's graph and replayed: every call ran
    under ``capture_check`` (a sync or a copy would have raised, naming it), and the replays —
    the recorded kernels with their recorded arguments on the same memory — end at the very
    weights of eager steps, so no per-step number was frozen at the capture."""
    made = []
    eager, rows_e = _train_weights("off", monkeypatch, projection=projection)
    replayed, rows_g = _train_weights("on", monkeypatch, made, projection=projection)
    step = made[0]
    assert step.kind == "standin" and step.replays == 3, step.reasons
    assert step.reasons == []                              # partial batches bypass the graph
    for a, b in zip(eager, replayed):
        assert np.array_equal(a, b)
    assert rows_e[-1]["train_loss"] == rows_g[-1]["train_loss"]


def test_a_replay_is_one_launch_and_no_sync_or_copy(on_standin):
    """gpu_bench's replayed step: Algorithm 1 on a fixed minibatch, captured after two
    eager steps; a replay is one graph launch plus the copies of its two outputs."""
    rng = backend.make_rng(0)
    model = models.bc_cifar10(width=1 / 16)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    bounds = clipping.clip_bounds(model, 0.5)
    x = backend.asarray(np.random.default_rng(0).standard_normal((4, 3, 32, 32),
                                                                 dtype=np.float32))
    y = backend.asarray(np.arange(4) % 10)

    def step():
        loss, scores = algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign",
                                             bounds, rng, return_scores=True, sync=False)
        return loss, (scores.argmax(axis=1) != y).sum()

    graph = graphs.capture_step(step, optimizer=opt, prepare=opt.write_step_scalars, mode="on")
    for _ in range(3):
        graph()
    assert graph.kind == "standin" and graph.kernels_per_replay > 100   # the recorded kernels
    with standin.counting() as c:
        loss, wrong = graph()
    assert (c.launches, c.syncs, c.copies) == (3, 0, 0), c.ops     # graph.launch + 2 copies
    assert opt.t == 4 and opt.groups[0].step_scalars.t.item() == 4   # host and device agree


def test_a_per_step_number_frozen_at_capture_is_caught_by_the_replay(on_standin, monkeypatch):
    """The test above can fail: Adam's bias corrections written from host numbers (fill
    launches with the value as argument) are frozen in a graph, and the weights differ."""
    from tinyproj.optim import device_scalars

    def frozen_advance(self, t, betas):
        self.values[1:2].fill(1.0 - betas[0] ** t)        # a launch argument: frozen
        self.values[2:3].fill(1.0 - betas[1] ** t)
        self.host_t = t

    monkeypatch.setattr(device_scalars.StepScalars, "advance_adam", frozen_advance)
    eager, _ = _train_weights("off", monkeypatch)
    replayed, _ = _train_weights("on", monkeypatch)
    assert any(not np.array_equal(a, b) for a, b in zip(eager, replayed))


def test_a_syncing_op_inside_the_step_is_caught_with_its_name(on_standin, monkeypatch):
    real_step = algorithm1.train_step

    def syncing_step(*args, **kwargs):
        loss, scores = real_step(*args, **kwargs)
        loss.item()                                        # a read-back: not capturable
        return loss, scores

    monkeypatch.setattr(algorithm1, "train_step", syncing_step)
    with pytest.raises(standin.CaptureError, match=r"\.item\(\) syncs the host"):
        training.train(_cfg("tr-sign-c"), progress=False, log=_quiet, graph="on")
    training.train(_cfg("tr-sign-c"), progress=False, log=_quiet, graph="off")   # eager: fine


def test_a_host_to_device_copy_inside_the_region_is_caught(on_standin):
    step = graphs.capture_step(lambda: (standin.asarray(np.ones(2)),), mode="on", log=_quiet)
    with pytest.raises(standin.CaptureError, match="xp.asarray"):
        step()
    assert not standin.capturing()                         # the region closed on the error


@pytest.mark.numpy_only("the NumPy backend's fallback")
def test_the_fallback_reason_is_printed_once():
    said = []
    calls = []
    step = graphs.capture_step(lambda: calls.append(1) or (), mode="on", log=said.append)
    for _ in range(3):
        step()
    assert len(calls) == 3 and step.kind == "eager"
    assert len(said) == 1 and "numpy backend runs on the CPU" in said[0]
    quiet = graphs.capture_step(lambda: (), mode="auto", log=said.append)
    quiet()
    assert len(said) == 1                                  # auto: eager on NumPy, silently


@pytest.mark.numpy_only("the NumPy backend's fallback")
def test_the_training_loop_says_once_why_numpy_runs_eagerly():
    said = []
    training.train(_cfg("tr-sign-c"), progress=False, log=said.append, graph="on")
    assert sum("CUDA graph" in line for line in said) == 1


def test_a_bad_graph_mode_is_a_user_error_naming_the_flag():
    from tinyproj.errors import UserError
    with pytest.raises(UserError, match="on, off or auto") as err:
        training.train(_cfg("tr-sign-c"), progress=False, log=_quiet, graph="sometimes")
    assert err.value.flag == "--graph"


def test_an_optimizer_that_steps_parameter_by_parameter_is_not_replayed(on_standin):
    """A parameter without a gradient sends Adam down the per-parameter path, whose Python
    numbers a graph would freeze: the step stays eager, and says so once."""
    model = models.bc_cifar10(width=1 / 16)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    x = backend.asarray(np.zeros((2, 3, 32, 32), np.float32))
    y = backend.asarray(np.arange(2))
    first = next(iter(model.parameters()))

    def step():
        loss = algorithm1.train_step(model, x, y, F.square_hinge_loss, opt, "sign", {},
                                     backend.make_rng(0), sync=False)
        return (loss,)

    said = []
    real_step = opt.step

    def step_missing_a_gradient():
        first.grad = None
        real_step()

    opt.step = step_missing_a_gradient
    graph = graphs.capture_step(step, optimizer=opt, mode="on", log=said.append)
    for _ in range(4):
        graph()
    assert graph.kind == "eager" and len(said) == 1 and "parameter by parameter" in said[0]


@pytest.mark.parametrize("projection", ["sign", "stoch", "power:beta=U(0,2)"])
def test_a_run_stopped_after_replays_resumes_to_the_weights_of_an_uninterrupted_one(
        on_standin, tmp_path, projection):
    """The host's bookkeeping of replayed steps (Adam's t per parameter, the optimizer's step
    count) goes into the checkpoint; the resumed run puts t back on the device and its
    minibatch offset at the saved position; the run's generator, whose draws the replays made
    on the device (Stoch's key, Power's β), is saved as (seed, stream) and written back. One
    epoch of 7 full batches and a partial one, stopped after step 5 (two warm-up steps, the
    capture, two replays)."""
    def cfg(out):
        return _cfg("tr-sign-c", train_subset=150, test_projections=["none"],
                    bn_reestimate=False, out=str(out), projection=projection)

    whole, _ = training.train(cfg(tmp_path / "whole"), progress=False, log=_quiet, graph="on")
    with pytest.raises(training.TrainingInterrupted):
        training.train(cfg(tmp_path / "part"), progress=False, log=_quiet, graph="on",
                       stop_at_step=5)
    resumed, _ = training.train(cfg(tmp_path / "part"), resume=True, progress=False,
                                log=_quiet, graph="on")
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert np.array_equal(a.data.get(), b.data.get())


@pytest.mark.numpy_only("the NumPy backend's fallback")
def test_the_command_line_flag(tmp_path, capsys):
    from tinyproj.cli import main
    base = ["train", "--preset", "tr-sign-c", "--dataset", "synthetic", "--width", "0.0625",
            "--train-subset", "40", "--val-size", "0", "--test-subset", "20", "--batch-size",
            "20", "--epochs", "1", "--bn-batches", "1", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "a"), "--graph", "on"]) == 0
    assert capsys.readouterr().out.count("CUDA graph:") == 1      # NumPy: why, once
    assert main(base + ["--out", str(tmp_path / "b")]) == 0       # auto: silent on NumPy
    assert "CUDA graph" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(base + ["--out", str(tmp_path / "c"), "--graph", "sometimes"])
    assert bad.value.code == 2 and not (tmp_path / "c").exists()


def test_changed_betas_reach_the_device(on_standin):
    opt, _ = _adam_run(2, [1e-3, 1e-3], device=True)
    opt.betas = (0.5, 0.9)
    for q in opt.params:
        q.grad = q.data * 0 + 1
    opt.step()
    values = opt.groups[0].step_scalars.values.get()
    assert values[1] == np.float32(1 - 0.5 ** 3) and values[2] == np.float32(1 - 0.9 ** 3)


def test_replays_follow_a_per_step_lr_and_a_clip_schedule(on_standin, monkeypatch):
    """A cosine rate that changes every step and clip bounds ×1.5 at steps 4 and 6 (inside the
    replays): written before each replay (fill launches into the arrays the graph reads), so
    replayed steps still end at the weights of eager steps."""
    extra = dict(lr_schedule="cosine", lr_final=0.0, clip_factor=1.5, clip_milestones=[4, 6])
    eager, _ = _train_weights("off", monkeypatch, **extra)
    made = []
    replayed, _ = _train_weights("on", monkeypatch, made, **extra)
    assert made[0].replays == 3
    for a, b in zip(eager, replayed):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# The CuPy branch's control flow, with a stand-in for CuPy's stream and graph API
# ---------------------------------------------------------------------------
class _FakeCupy:
    """Just what graphs.py calls: Stream (capture), MemoryPool, using_allocator,
    get_current_stream. A launched graph records the launch (it cannot rerun kernels)."""

    def __init__(self, fail_end=False):
        import contextlib
        import types
        fake = self
        self.events = []

        class Graph:
            def launch(self, stream=None):
                fake.events.append("launch")

        class Stream:
            def __init__(self, non_blocking=False):
                self.capturing = False

            def __enter__(self):
                fake.events.append("enter")
                return self

            def __exit__(self, *exc):
                fake.events.append("exit")
                return False

            def begin_capture(self):
                self.capturing = True
                fake.events.append("begin")

            def end_capture(self):
                self.capturing = False
                fake.events.append("end")
                if fail_end:
                    raise RuntimeError("cudaErrorStreamCaptureInvalidated")
                return Graph()

            def synchronize(self):
                fake.events.append("sync")

        class MemoryPool:
            def malloc(self, size):
                raise AssertionError("not called here")

            def total_bytes(self):
                return 1234

        @contextlib.contextmanager
        def using_allocator(allocator):
            fake.events.append("allocator")
            yield

        self.cuda = types.SimpleNamespace(Stream=Stream, MemoryPool=MemoryPool,
                                          using_allocator=using_allocator,
                                          get_current_stream=lambda: Stream())


def _with_fake_cupy(monkeypatch, fake):
    import sys
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "name", lambda: "cupy")


def test_the_cupy_branch_warms_up_captures_launches_and_replays(monkeypatch):
    fake = _FakeCupy()
    _with_fake_cupy(monkeypatch, fake)
    out = np.zeros(1)
    calls = []

    def step():
        calls.append(len(fake.events))
        out[0] += 1
        return (out,)

    class Opt:
        t, replays = 0, 0

        def host_counters(self):
            return self.t

        def replayed(self):
            self.replays += 1

    opt = Opt()
    graph = graphs.capture_step(step, optimizer=opt, mode="auto", warmup=2, log=_quiet)
    for _ in range(5):
        graph(signature=50)
    assert len(calls) == 3 and graph.kind == "cuda" and graph.replays == 2
    assert fake.events[:6] == ["sync", "allocator", "enter", "begin", "end", "exit"]
    assert fake.events.count("launch") == 3 and opt.replays == 2   # capture's launch + 2
    assert graph.pool_bytes() == 1234
    graph(signature=20)                                    # another shape: eager, said once
    assert len(calls) == 4 and len(graph.reasons) == 1
    # TF32 switched after the capture: cuBLAS's math mode is in the graph, so eager, said once
    monkeypatch.setattr(graphs.backend, "tf32_enabled", lambda: True)
    graph(signature=50)
    graph(signature=50)
    assert len(calls) == 6 and len(graph.reasons) == 2 and "TF32" in graph.reasons[1]
    monkeypatch.setattr(graphs.backend, "tf32_enabled", lambda: False)
    graph(signature=50)                                    # back as captured: replayed again
    assert len(calls) == 6 and graph.replays == 3


def test_the_cupy_branch_falls_back_when_the_capture_fails(monkeypatch):
    fake = _FakeCupy(fail_end=True)
    _with_fake_cupy(monkeypatch, fake)
    said, calls = [], []
    state = {"t": 0}

    class Opt:
        def host_counters(self):
            return state["t"]

        def set_host_counters(self, t):
            state["t"] = t

    def step():
        calls.append(1)
        state["t"] += 1                                    # host bookkeeping of a step
        return ()

    graph = graphs.capture_step(step, optimizer=Opt(), mode="on", warmup=1, log=said.append)
    for _ in range(4):
        graph()
    # 1 warm-up, the failed capture (its bookkeeping undone), then eager: 4 steps counted
    assert graph.kind == "eager" and len(calls) == 5 and state["t"] == 4
    assert len(said) == 1 and "cudaErrorStreamCaptureInvalidated" in said[0]
    assert "launch" not in fake.events
