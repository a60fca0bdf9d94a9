"""The run's generator on a device (kernels/generator.py): Philox keyed by (seed, stream).

* its draws are the kernels' numbers: the host build of uniform_fill / normal_fill (the GPU's
  per-element code) equals the NumPy reference (uniforms bit for bit, normals to the last bit
  of log/cos), and element e depends on (seed, stream, e) alone;
* they have the right distribution (uniform moments, range and float32 grid; normal moments
  and quantiles; integers' range and counts);
* its whole state is (seed, stream): saved and written back, the next draws repeat; through
  ``rng_state``/``set_rng_state`` (JSON, as a checkpoint stores it) too, and a state of
  another kind is refused;
* ``kernels.random_key`` hands out its key, so the stochastic projections are part of that
  state;
* on the stand-in a draw is two launches, no sync and no copy (so a CUDA graph can hold it),
  and a replayed recording draws the numbers of the following streams, in a bare recording
  and through ``graphs.capture_step``;
* a device run's checkpoint holds the generator's state, and a checkpoint without one (CuPy's
  runs before this generator) resumes with one warning.

Everything runs on the stand-in (the device path) and, where it says so, on NumPy arrays
(``device="cpu"``: the same generator with its key on the host). The ``gpu`` tests at the end
(``pytest -m gpu``, benchmarks/gpu_check.sh) check the same on CuPy: the reference numbers, a
real CUDA graph's replays, and a stopped Tr-Stoch-C run resuming to the same weights.
"""
import json
import math

import numpy as np
import pytest

from tinyproj import backend, kernels, standin
from tinyproj.kernels import reference
from tinyproj.kernels.generator import PhiloxGenerator
from tinyproj.runs.files import rng_state, set_rng_state

DTYPES = [np.float32, np.float64]


def host(a):
    return backend.to_numpy(a)


@pytest.fixture(scope="module")
def host_build():
    from tinyproj.kernels import host as h
    if not h.available():
        pytest.skip(f"host build of the GPU kernels unavailable: {h.unavailable_reason()}")
    return h


# ---------------------------------------------------------------------------
# The kernels: host build (the GPU's per-element code) against the reference
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_uniform_fill_of_the_host_build_is_the_reference_bit_for_bit(host_build, dtype):
    key = np.array([123456789, 42], np.int64)
    got = host_build.uniform_fill(key, 1000, dtype, -1.5, 2.5)
    want = reference.uniform_fill(key, 1000, dtype, -1.5, 2.5)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_fill_of_the_host_build_is_the_reference_to_the_last_bits(host_build, dtype):
    key = np.array([987654321, 7], np.int64)
    got = host_build.normal_fill(key, 1000, dtype, 0.5, 2.0)
    want = reference.normal_fill(key, 1000, dtype, 0.5, 2.0)
    assert got.dtype == want.dtype == dtype
    tol = 2e-6 if dtype == np.float32 else 1e-14     # log/cos of two math libraries
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_element_e_of_a_draw_depends_on_the_key_and_e_alone():
    key = np.array([5, 9], np.int64)
    long = reference.uniform_fill(key, 100, np.float64, 0, 1)
    np.testing.assert_array_equal(reference.uniform_fill(key, 10, np.float64, 0, 1), long[:10])
    other_stream = reference.uniform_fill(np.array([5, 10], np.int64), 100, np.float64, 0, 1)
    other_seed = reference.uniform_fill(np.array([6, 9], np.int64), 100, np.float64, 0, 1)
    assert not np.any(long == other_stream) and not np.any(long == other_seed)


def test_the_fills_refuse_integer_dtypes():
    with pytest.raises(TypeError, match="float32 or float64"):
        reference.uniform_fill(np.array([1, 1], np.int64), 4, np.int32, 0, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        PhiloxGenerator(0, device="cpu").random(3, dtype=np.int64)


# ---------------------------------------------------------------------------
# Distributions (on the stand-in: the host build, as the GPU computes them)
# ---------------------------------------------------------------------------
N = 200_000


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_is_uniform_on_0_1(on_standin, dtype):
    u = host(backend.make_rng(1).random(N, dtype=dtype))
    assert u.dtype == dtype and u.shape == (N,)
    assert u.min() >= 0 and u.max() < 1
    se = math.sqrt(1 / 12 / N)
    assert abs(u.mean() - 0.5) < 5 * se
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / N)     # var of (u − ½)²: 1/180
    counts = np.bincount((u * 20).astype(int), minlength=20)         # 20 equal bins
    chi2 = ((counts - N / 20) ** 2 / (N / 20)).sum()
    assert chi2 < 45                                                 # χ²(19): p ≈ 0.0007
    if dtype == np.float32:                                          # the 2⁻²⁴ grid, exactly
        assert np.all((u * 2 ** 24) == np.round(u * 2 ** 24))


def test_uniform_scales_and_shifts_the_same_numbers(on_standin):
    a, b = backend.make_rng(2), backend.make_rng(2)
    u = host(a.random((40, 50)))
    v = host(b.uniform(-3.0, 5.0, (40, 50)))
    np.testing.assert_array_equal(v, -3.0 + 8.0 * u)
    assert v.min() >= -3.0 and v.max() < 5.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_standard_normal_has_the_moments_and_quantiles_of_n01(on_standin, dtype):
    z = host(backend.make_rng(3).standard_normal(N, dtype=dtype)).astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(N)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / N)
    # Φ(−1.96) = 0.025, Φ(0) = ½, Φ(1) = 0.8413
    for x, p in [(-1.96, 0.025), (0.0, 0.5), (1.0, 0.841345)]:
        assert abs((z < x).mean() - p) < 5 * math.sqrt(p * (1 - p) / N)
    w = host(backend.make_rng(3).normal(2.0, 0.5, N, dtype=dtype))
    np.testing.assert_allclose(w, 2.0 + 0.5 * z.astype(dtype), rtol=1e-6)


def test_integers_cover_their_range_evenly(on_standin):
    k = host(backend.make_rng(4).integers(3, 13, size=N))
    assert k.dtype == np.int64 and k.min() == 3 and k.max() == 12
    counts = np.bincount(k - 3, minlength=10)
    assert ((counts - N / 10) ** 2 / (N / 10)).sum() < 30           # χ²(9): p ≈ 0.0004
    assert set(host(backend.make_rng(4).integers(2, size=100)).tolist()) == {0, 1}
    assert host(backend.make_rng(4).integers(5, 6, size=7, endpoint=True)).max() == 6
    with pytest.raises(ValueError, match="2\\*\\*32"):
        backend.make_rng(4).integers(0, 2 ** 40)
    with pytest.raises(ValueError, match="1 to 2\\*\\*32"):
        backend.make_rng(4).integers(5, 5)


def test_permutation_is_an_order_of_every_index(on_standin):
    order = backend.permutation(backend.make_rng(5), 1000)
    assert sorted(order.tolist()) == list(range(1000))
    assert order.tolist() != list(range(1000))


def test_shapes_follow_size(on_standin):
    g = backend.make_rng(6)
    assert g.random().shape == ()
    assert g.random(4).shape == (4,)
    assert g.standard_normal((2, 3, 4)).shape == (2, 3, 4)
    assert g.random((0, 3)).shape == (0, 3)


# ---------------------------------------------------------------------------
# The state: (seed, stream)
# ---------------------------------------------------------------------------
def test_the_same_seed_draws_the_same_numbers_and_another_seed_others(on_standin):
    a, b, c = backend.make_rng(7), backend.make_rng(7), backend.make_rng(8)
    assert isinstance(a, PhiloxGenerator)
    np.testing.assert_array_equal(host(a.random(50)), host(b.random(50)))
    assert not np.any(host(a.random(50)) == host(c.random(50)))


def test_each_draw_moves_the_stream_on_by_one(on_standin):
    g = backend.make_rng(9)
    seed = g.state["seed"]
    assert g.state == {"seed": seed, "stream": 0}
    g.random(3)
    g.standard_normal((2, 2))
    g.integers(0, 5, size=4)
    assert g.state == {"seed": seed, "stream": 3}
    # draw k is the kernel's fill at stream k
    h = backend.make_rng(9)
    want = reference.uniform_fill(np.array([seed, 1], np.int64), 6, np.float64, 0, 1)
    np.testing.assert_array_equal(host(h.random(6)), want)


@pytest.mark.parametrize("place", ["standin", "numpy"])
def test_a_state_written_back_repeats_the_draws_after_it(request, place):
    if place == "standin":
        request.getfixturevalue("on_standin")
        g = backend.make_rng(10)
    else:
        g = PhiloxGenerator(10, device="cpu")
    g.random(5)
    saved = json.loads(json.dumps(g.state))            # as a checkpoint stores it
    first = [host(g.random(8)), host(g.standard_normal(3)), host(g.integers(0, 9, size=4))]
    g.random(100)                                      # more draws, then back
    g.state = saved
    again = [host(g.random(8)), host(g.standard_normal(3)), host(g.integers(0, 9, size=4))]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_rng_state_saves_and_restores_the_device_generator_as_json(on_standin):
    g = backend.make_rng(11)
    g.random(3)
    saved = json.loads(json.dumps(rng_state(g)))
    assert saved["kind"] == "philox"
    want = host(g.random(6))
    fresh = backend.make_rng(999)                      # a resumed run's generator
    assert set_rng_state(fresh, saved) is True
    np.testing.assert_array_equal(host(fresh.random(6)), want)


def test_a_state_of_another_kind_is_refused_and_a_broken_one_named(on_standin):
    g = backend.make_rng(12)
    numpy_state = rng_state(np.random.default_rng(0))
    assert set_rng_state(g, numpy_state) is False               # a NumPy run's checkpoint
    assert set_rng_state(g, {"kind": "unsupported"}) is False   # an older device checkpoint
    assert set_rng_state(np.random.default_rng(0), rng_state(g)) is False
    with pytest.raises(ValueError, match="'seed': int, 'stream': int"):
        g.state = {"seed": 1}


# ---------------------------------------------------------------------------
# The stochastic kernels' key is the generator's
# ---------------------------------------------------------------------------
def test_random_key_is_the_generators_key_moved_on(on_standin):
    g = backend.make_rng(13)
    like = standin.asarray(np.zeros(3, np.float32))
    key = kernels.random_key(g, like)
    assert host(key).tolist() == [g.state["seed"], 1]
    g.random(2)
    assert host(kernels.random_key(g, like))[1] == 3
    on_host = kernels.random_key(g, np.zeros(3, np.float32))
    assert isinstance(on_host, np.ndarray) and on_host[1] == 4


def test_a_restored_state_repeats_a_stochastic_projection(on_standin):
    g = backend.make_rng(14)
    w = standin.asarray(np.linspace(-1, 1, 64, dtype=np.float32))
    offsets = standin.asarray(np.array([0, 64], np.int64))
    stoch = kernels.get("stoch_projection_segments", w)
    saved = g.state
    a = host(stoch(w, offsets, kernels.random_key(g, w)))
    g.state = saved
    b = host(stoch(w, offsets, kernels.random_key(g, w)))
    np.testing.assert_array_equal(a, b)
    assert set(np.abs(a).tolist()) == {1.0}


# ---------------------------------------------------------------------------
# Launches, syncs, copies; replay
# ---------------------------------------------------------------------------
def test_a_draw_is_two_launches_and_no_sync_or_copy(on_standin):
    g = backend.make_rng(15)
    g.random(2)
    with standin.counting() as c:
        g.standard_normal((8, 8), dtype=np.float32)
    assert (c.launches, c.syncs, c.copies) == (2, 0, 0)


def test_a_replayed_recording_draws_the_next_streams(on_standin):
    """The stand-in's graph records the draw (the stream's move and the fill) and replays it on
    the same memory: each replay gives the numbers of the next stream, as eager draws would."""
    g = backend.make_rng(16)
    out, graph = standin.capture(lambda: g.random(5), "a draw")
    drawn = [host(out).copy()]
    for _ in range(2):
        graph.launch()
        drawn.append(host(out).copy())
    eager = backend.make_rng(16)
    for got in drawn:
        np.testing.assert_array_equal(got, host(eager.random(5)))


def _draws_through_capture_step():
    """Five calls of a step that draws — one eager warm-up, the capture, three replays — each
    call's numbers copied out; and the same five draws made eagerly by a twin generator."""
    from tinyproj import graphs
    g = backend.make_rng(21)
    step = graphs.capture_step(lambda: (g.random(300), g.standard_normal(300, dtype=np.float32)),
                               mode="on", warmup=1, log=lambda *a: None)
    got = [tuple(host(a).copy() for a in step()) for _ in range(5)]
    twin = backend.make_rng(21)
    want = [(host(twin.random(300)), host(twin.standard_normal(300, dtype=np.float32)))
            for _ in range(5)]
    return step, got, want


def test_a_step_that_draws_replays_the_draws_of_eager_steps(on_standin):
    step, got, want = _draws_through_capture_step()
    assert step.kind == "standin" and step.replays == 3
    for (u, z), (u_e, z_e) in zip(got, want):
        np.testing.assert_array_equal(u, u_e)
        np.testing.assert_array_equal(z, z_e)


# ---------------------------------------------------------------------------
# On a GPU (pytest -m gpu; benchmarks/gpu_check.sh)
# ---------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_on_the_gpu_the_draws_are_the_reference_numbers(on_cupy, dtype):
    g = backend.make_rng(22)
    seed = g.state["seed"]
    u = host(g.uniform(-1.0, 3.0, 5000, dtype=dtype))
    z = host(g.standard_normal(5000, dtype=dtype))
    np.testing.assert_array_equal(
        u, reference.uniform_fill(np.array([seed, 1], np.int64), 5000, dtype, -1.0, 3.0))
    tol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(
        z, reference.normal_fill(np.array([seed, 2], np.int64), 5000, dtype, 0.0, 1.0),
        rtol=tol, atol=tol)
    saved = g.state
    a = host(g.random(100))
    g.state = saved
    np.testing.assert_array_equal(host(g.random(100)), a)


@pytest.mark.gpu
def test_on_the_gpu_a_cuda_graph_replays_the_draws_of_eager_steps(on_cupy):
    step, got, want = _draws_through_capture_step()
    assert step.kind == "cuda" and step.replays == 3, step.reasons
    for (u, z), (u_e, z_e) in zip(got, want):
        np.testing.assert_array_equal(u, u_e)
        np.testing.assert_array_equal(z, z_e)


# ---------------------------------------------------------------------------
# A checkpoint written before this generator (or on another backend)
# ---------------------------------------------------------------------------
def _checkpoint_rng(path, rng_meta=None):
    from tinyproj.runs.files import load_checkpoint, save_checkpoint
    model_state, optim_state, meta = load_checkpoint(path)
    if rng_meta is not None:
        meta["rng"] = rng_meta
        save_checkpoint(path, model_state, optim_state, meta)
    return meta["rng"]


def _stopped_stoch_run(tmp_path, steps):
    """A tiny Tr-Stoch-C run stopped after ``steps`` steps: ``(its config, its checkpoint)``."""
    from _helpers import tiny_config
    from tinyproj.runs.training import TrainingInterrupted, train
    cfg = tiny_config(tmp_path, "run", preset="tr-stoch-c", epochs=1, train_subset=60,
                      val_size=0, test_subset=20, test_projections=["none"],
                      bn_reestimate=False)
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_at_step=steps, progress=False, log=lambda *a: None)
    return cfg, tmp_path / "run" / "checkpoint.npz"


def test_a_device_run_saves_its_generator_and_an_older_checkpoint_resumes_with_a_warning(
        on_standin, tmp_path):
    from tinyproj.runs.training import train
    cfg, ckpt = _stopped_stoch_run(tmp_path, 2)
    saved = _checkpoint_rng(ckpt)
    assert saved["kind"] == "philox" and saved["state"]["stream"] > 0
    _checkpoint_rng(ckpt, {"kind": "unsupported"})            # as CuPy's runs wrote it
    said = []
    train(cfg, resume=True, progress=False, log=said.append)
    warned = [line for line in said if line.startswith("warning:")]
    assert len(warned) == 1 and "'unsupported'" in warned[0] and "differ" in warned[0]


@pytest.mark.gpu
def test_on_the_gpu_a_stopped_stochastic_run_resumes_to_the_same_weights(on_cupy, tmp_path):
    """Tr-Stoch-C (the projection draws at every step) for 2 epochs of 3 steps, stopped
    after step 4 and resumed: the weights of an uninterrupted run, bit for bit."""
    from _helpers import tiny_config
    from tinyproj.runs.training import TrainingInterrupted, train
    settings = dict(preset="tr-stoch-c", epochs=2, train_subset=60, val_size=0,
                    test_subset=20, test_projections=["none"], bn_reestimate=False)
    quiet = dict(progress=False, log=lambda *a: None)
    straight, _ = train(tiny_config(tmp_path, "straight", **settings), **quiet)
    cfg = tiny_config(tmp_path, "stopped", **settings)
    with pytest.raises(TrainingInterrupted):
        train(cfg, stop_at_step=4, **quiet)
    resumed, _ = train(cfg, resume=True, **quiet)
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(host(v), host(resumed.state_dict()[k]), err_msg=k)


@pytest.mark.parametrize("place,want", [("numpy", "NumPy's PCG64"),
                                        ("standin", "Philox (seed, stream)")])
def test_info_names_the_runs_generator(place, want, capsys):
    from tinyproj.cli import main
    previous = backend.name()
    backend.use(place)
    try:
        assert main(["info"]) == 0
    finally:
        backend.use(previous)
    line = next(li for li in capsys.readouterr().out.splitlines() if li.startswith("random"))
    assert want in line and "saved in checkpoints" in line


def test_another_device_generator_seeds_one_philox_key_of_its_own(on_standin):
    """A generator that is not the library's (here the stand-in's ``random``, as CuPy's would
    be) gets one PhiloxGenerator, seeded once from it: later keys move the same stream on."""
    foreign = standin.random.default_rng(3)
    like = standin.asarray(np.zeros(2, np.float32))
    first = host(kernels.random_key(foreign, like)).copy()
    with standin.counting() as c:
        key = kernels.random_key(foreign, like)
    assert (c.launches, c.syncs, c.copies) == (1, 0, 0)
    second = host(key)
    assert second[0] == first[0] and second[1] == first[1] + 1
    other = host(kernels.random_key(standin.random.default_rng(4), like))
    assert other[0] != first[0]


@pytest.mark.parametrize("place", ["numpy", "standin"])
@pytest.mark.parametrize("broken", [{"kind": "KIND", "state": {"seed": "x"}}, {"kind": "KIND"},
                                    "not a record"])
def test_a_broken_generator_state_refuses_the_resume_by_name_and_keeps_the_checkpoint(
        place, broken, tmp_path):
    from tinyproj.errors import UserError
    from tinyproj.runs.training import train
    previous = backend.name()
    backend.use(place)
    try:
        cfg, ckpt = _stopped_stoch_run(tmp_path, 1)
        kind = _checkpoint_rng(ckpt)["kind"]
        if isinstance(broken, dict):
            broken = dict(broken, kind=kind)
        _checkpoint_rng(ckpt, broken)
        before = ckpt.read_bytes()
        with pytest.raises(UserError, match="checkpoint .* is corrupt .*generator state"):
            train(cfg, resume=True, progress=False, log=lambda *a: None)
        assert ckpt.read_bytes() == before
    finally:
        backend.use(previous)
