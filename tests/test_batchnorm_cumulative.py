"""BatchNorm(momentum=None): the cumulative average of the batch statistics, kept on the device.

The k-th training batch since a reset uses momentum 1/k, k = num_batches_tracked, so the
running statistics are the plain average of the per-batch statistics. The momentum is a 0-d
device array: the step makes no device→host sync, which the stand-in's capture check
(tinyproj/standin/counters.py) would refuse, naming the operation.
"""
import numpy as np
import pytest

from tinyproj import backend, nn, standin


def _batches(shape, count=5):
    rng = np.random.default_rng(7)
    return [(rng.standard_normal(shape) * (k + 1) + k).astype(np.float32) for k in range(count)]


@pytest.mark.parametrize("layer, shape, axes", [
    (nn.BatchNorm1d, (12, 5), (0,)),
    (nn.BatchNorm2d, (4, 3, 3, 3), (0, 2, 3)),
])
def test_cumulative_average_runs_without_a_sync_and_is_the_plain_average(
        on_standin, layer, shape, axes):
    bn = layer(shape[1], momentum=None)
    batches = _batches(shape)
    for xd in [standin.asarray(xb) for xb in batches]:    # copied up outside the region
        with standin.capture_check("a BatchNorm(momentum=None) training step"):
            bn(xd)
    means = np.mean([xb.mean(axis=axes, dtype=np.float64) for xb in batches], axis=0)
    variances = np.mean([xb.var(axis=axes, ddof=1, dtype=np.float64) for xb in batches], axis=0)
    np.testing.assert_allclose(backend.to_numpy(bn.running_mean), means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(bn.running_var), variances, rtol=1e-5)
    assert int(backend.to_numpy(bn.num_batches_tracked)) == len(batches)


def test_cumulative_average_on_numpy_restarts_after_a_reset_and_survives_a_bad_batch():
    bn = nn.BatchNorm1d(3, momentum=None)
    bn(np.full((4, 3), np.inf, np.float32))           # running statistics become inf/NaN
    bn.reset_running_stats()
    batches = _batches((8, 3), count=3)
    for xb in batches:
        bn(xb)
    means = np.mean([xb.mean(axis=0, dtype=np.float64) for xb in batches], axis=0)
    variances = np.mean([xb.var(axis=0, ddof=1, dtype=np.float64) for xb in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean, means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, variances, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 3


def test_evaluation_and_reestimation_are_unchanged_by_momentum_none(on_standin):
    bn = nn.BatchNorm1d(2, momentum=None)
    bn.start_reestimation()
    batches = _batches((6, 2), count=2)
    on_device = [standin.asarray(xb) for xb in batches]
    with standin.capture_check("re-estimation"):
        for xd in on_device:
            bn(xd)
    assert bn.reestimation_batches == 2
    means = np.mean([xb.mean(axis=0, dtype=np.float64) for xb in batches], axis=0)
    np.testing.assert_allclose(backend.to_numpy(bn.running_mean), means, rtol=1e-5, atol=1e-6)
    bn.stop_reestimation()
    bn.eval()
    before = backend.to_numpy(bn.running_mean).copy()
    bn(standin.asarray(batches[0]))
    np.testing.assert_array_equal(backend.to_numpy(bn.running_mean), before)
