"""tinyproj against PyTorch (CPU) on random float32 inputs.

Relative error ‖a − b‖ / ‖b‖ must be at most 1e-4 for forward values and 1e-3 for
gradients (float32 sums in a different order differ in the last digits).
PyTorch is a reference only; these tests are skipped when it is not installed.
"""
import numpy as np
import pytest

import tinyproj as tp
from tinyproj import backend
import tinyproj.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

FWD_TOL, GRAD_TOL = 1e-4, 1e-3


def rel_err(a, b):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(backend.to_numpy(a))
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(backend.to_numpy(b))
    assert a.shape == b.shape, (a.shape, b.shape)
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def both(array):
    """The same float32 values as a tinyproj and a torch leaf that require grad."""
    return tp.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


def assert_close(ours, theirs, tol, what):
    err = rel_err(ours, theirs)
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:g}"


def assert_grads_close(y, yt, gy, what, **leaves):
    """Backpropagate the same output gradient ``gy`` through both graphs, then compare the
    gradients of each pair of leaves: ``dx=(x, xt)`` is checked as ``"{what} dx"``. A pair
    whose tinyproj leaf is None (no bias) is skipped."""
    y.backward(gy)
    yt.backward(torch.tensor(gy))
    for name, (ours, theirs) in leaves.items():
        if ours is not None:
            assert_close(ours.grad, theirs.grad, GRAD_TOL, f"{what} {name}".lstrip())


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------
CONV_CASES = [
    # x shape, w shape, stride, padding, bias
    ((4, 3, 16, 16), (8, 3, 3, 3), 1, 1, False),
    ((4, 3, 16, 16), (8, 3, 3, 3), 1, 0, True),
    ((4, 5, 15, 15), (6, 5, 3, 3), 2, 1, False),
    ((4, 5, 15, 15), (6, 5, 5, 5), 3, 2, True),
    ((2, 4, 12, 13), (6, 4, 2, 3), 1, (0, 1), False),   # non-square kernel
    ((2, 4, 12, 13), (6, 4, 3, 2), (2, 1), (1, 0), True),
    ((2, 3, 67, 67), (16, 3, 11, 11), 4, 2, True),      # AlexNet's first layer
    ((3, 8, 7, 7), (4, 8, 1, 1), 1, 0, False),
]


@pytest.mark.parametrize("xs,ws,stride,pad,bias", CONV_CASES)
def test_conv2d_matches_torch(xs, ws, stride, pad, bias):
    rng = np.random.default_rng(0)
    x, xt = both(f32(rng, *xs))
    w, wt = both(f32(rng, *ws, scale=0.1))
    b, bt = both(f32(rng, ws[0])) if bias else (None, None)
    y = F.conv2d(x, w, stride=stride, padding=pad, bias=b)
    yt = TF.conv2d(xt, wt, bt, stride=stride, padding=pad)
    assert y.dtype == np.float32
    assert_close(y.data, yt, FWD_TOL, "conv2d forward")
    gy = f32(rng, *yt.shape)
    assert_grads_close(y, yt, gy, "conv2d", dx=(x, xt), dw=(w, wt), db=(b, bt))
    assert x.grad.dtype == w.grad.dtype == np.float32


# The 3×3 convolutions of the BinaryConnect CIFAR-10 network (padding 1), forward and
# backward end to end. Batch 50 (the paper's) for the cheapest layer 3→128@32 and for
# 512→512@8; batch 8 for the others to keep the whole file to a few seconds on 2 cores
# (the arithmetic is identical, only repeated over fewer images).
BC_LAYERS = [(3, 128, 32, 50), (128, 128, 32, 8), (128, 256, 16, 8), (256, 256, 16, 8),
             (256, 512, 8, 8), (512, 512, 8, 50)]


@pytest.mark.parametrize("cin,cout,hw,batch", BC_LAYERS,
                         ids=[f"{a}to{b}@{h}xN{n}" for a, b, h, n in BC_LAYERS])
def test_binaryconnect_conv_layers_match_torch(cin, cout, hw, batch):
    rng = np.random.default_rng(cin + cout)
    x, xt = both(f32(rng, batch, cin, hw, hw))
    w, wt = both(f32(rng, cout, cin, 3, 3, scale=(2.0 / (9 * cin)) ** 0.5))
    y = F.conv2d(x, w, padding=1)
    yt = TF.conv2d(xt, wt, padding=1)
    assert y.shape == (batch, cout, hw, hw)
    assert_close(y.data, yt, FWD_TOL, "forward")
    gy = f32(rng, batch, cout, hw, hw)
    assert_grads_close(y, yt, gy, "", dx=(x, xt), dw=(w, wt))


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("xs,k,s,p", [((4, 6, 16, 16), 2, 2, 0), ((4, 6, 15, 15), 3, 2, 0),
                                      ((2, 3, 27, 27), 3, 2, 0), ((2, 3, 10, 10), 3, 2, 1),
                                      ((2, 3, 9, 11), 2, 1, 0)])
def test_max_pool2d_matches_torch(xs, k, s, p):
    rng = np.random.default_rng(1)
    x, xt = both(f32(rng, *xs))
    y = F.max_pool2d(x, k, s, padding=p)
    yt = TF.max_pool2d(xt, k, s, padding=p)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())   # max is exact
    gy = f32(rng, *yt.shape)
    assert_grads_close(y, yt, gy, "max_pool2d", dx=(x, xt))


# ---------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(32, 10), (8, 6, 5, 5)])
def test_batch_norm_training_matches_torch(shape):
    rng = np.random.default_rng(2)
    c = shape[1]
    x, xt = both(f32(rng, *shape, scale=3.0) + 1.5)
    g, gt = both(rng.uniform(0.5, 1.5, c).astype(np.float32))
    b, bt = both(f32(rng, c))
    rm = f32(rng, c)
    rv = rng.uniform(0.5, 2.0, c).astype(np.float32)
    rmt, rvt = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    rm, rv = backend.asarray(rm), backend.asarray(rv)   # statistics live with x (a device)
    for step in range(2):   # two updates of the running statistics
        if step:
            x.grad = g.grad = b.grad = None
            xt.grad = gt.grad = bt.grad = None
        y = F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
        yt = TF.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.1, eps=1e-5)
        assert_close(y.data, yt, FWD_TOL, "batch_norm forward")
        assert_close(rm, rmt, FWD_TOL, "running_mean")
        assert_close(rv, rvt, FWD_TOL, "running_var (unbiased)")
        gy = f32(rng, *shape)
        assert_grads_close(y, yt, gy, "batch_norm", dx=(x, xt), dgamma=(g, gt), dbeta=(b, bt))
    # evaluation with the running statistics
    ye = F.batch_norm(x, rm, rv, g, b, training=False)
    yte = TF.batch_norm(xt, rmt, rvt, gt, bt, training=False)
    assert_close(ye.data, yte, FWD_TOL, "batch_norm eval forward")


# ---------------------------------------------------------------------------
# linear and the losses
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_torch(bias):
    rng = np.random.default_rng(3)
    x, xt = both(f32(rng, 50, 64))
    w, wt = both(f32(rng, 10, 64, scale=0.1))
    b, bt = both(f32(rng, 10)) if bias else (None, None)
    y, yt = F.linear(x, w, b), TF.linear(xt, wt, bt)
    assert_close(y.data, yt, FWD_TOL, "linear forward")
    gy = f32(rng, 50, 10)
    assert_grads_close(y, yt, gy, "linear", dx=(x, xt), dw=(w, wt), db=(b, bt))


def torch_square_hinge(scores, labels):
    t = -torch.ones_like(scores)
    t[torch.arange(scores.shape[0]), labels] = 1.0
    return torch.mean(torch.relu(1 - t * scores) ** 2)


@pytest.mark.parametrize("loss,torch_loss", [(F.square_hinge_loss, torch_square_hinge),
                                             (F.cross_entropy, TF.cross_entropy)],
                         ids=["square_hinge", "cross_entropy"])
def test_losses_match_torch(loss, torch_loss):
    rng = np.random.default_rng(4)
    s, st = both(f32(rng, 50, 10, scale=2.0))
    labels = rng.integers(0, 10, 50)
    value = loss(s, labels)
    value_t = torch_loss(st, torch.tensor(labels))
    assert value.shape == () and value.dtype == np.float32
    assert_close(value.data, value_t, FWD_TOL, "loss value")
    value.backward()
    value_t.backward()
    assert_close(s.grad, st.grad, GRAD_TOL, "loss gradient")
