"""Tensor and the autograd graph: recording, ordering, broadcasting, freeing, modes."""
import gc
import weakref

import numpy as np
import pytest

import tinyproj as tp
import tinyproj.functional as F
from tinyproj import backend
from tinyproj.tensor import GraphFreedError

rng = np.random.default_rng(0)


def t64(*shape, requires_grad=True):
    return tp.tensor(rng.standard_normal(shape), requires_grad=requires_grad, dtype=np.float64)


# ---------------------------------------------------------------------------
# graph basics
# ---------------------------------------------------------------------------
def test_leaf_and_creator():
    x = tp.tensor([[1.0, 2.0]], requires_grad=True)
    y = x * x
    assert x.is_leaf and x.creator is None and x.generation == 0
    assert not y.is_leaf and y.creator.name == "Mul" and y.requires_grad
    assert y.generation == 1
    z = (y * 2).sum()
    assert z.generation == 3
    z.backward()
    np.testing.assert_allclose(x.grad, [[4.0, 8.0]])
    assert y.grad is None  # intermediate gradients are not kept


def test_docstring_example():
    x = tp.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 4.0]])


def test_backward_without_grad_raises():
    x = tp.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()


def test_backward_grad_shape_checked():
    x = t64(3)
    y = x * 2
    with pytest.raises(ValueError, match="expected"):
        y.backward(np.ones(4))


def test_diamond_x_used_twice():
    # y = x*x + x*x = 2x²  ->  dy/dx = 4x
    x = t64(5)
    y = x * x + x * x
    y.backward(np.ones(5))
    np.testing.assert_allclose(x.grad, 4 * x.data, rtol=1e-12)


def test_diamond_topological_order():
    # a is used by two branches of different depth; its gradient must be complete
    # before Mul(x, 3) runs backward:  a = 3x, y = a*a + exp(a) + a
    x = t64(4)
    a = x * 3
    y = (a * a + F.exp(a)) + a
    y.sum().backward()
    av = 3 * x.data
    np.testing.assert_allclose(x.grad, 3 * (2 * av + np.exp(av) + 1), rtol=1e-12)


def test_deep_chain_generations():
    x = t64(3)
    y = x
    for _ in range(50):
        y = y * 1.01 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 1.01 ** 50), rtol=1e-12)


# ---------------------------------------------------------------------------
# broadcasting: gradients are summed back to each operand's shape
# ---------------------------------------------------------------------------
BROADCAST_CASES = [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 3, 4), (4,)), ((), (2, 3)),
                   ((2, 3), ()), ((2, 1, 4), (3, 1)), ((1,), (5,))]


@pytest.mark.parametrize("sa,sb", BROADCAST_CASES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcast_gradient_reduction(op, sa, sb):
    a = tp.tensor(rng.uniform(0.5, 2.0, sa), requires_grad=True, dtype=np.float64)
    b = tp.tensor(rng.uniform(0.5, 2.0, sb), requires_grad=True, dtype=np.float64)
    y = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
    out_shape = np.broadcast_shapes(sa, sb)
    assert y.shape == out_shape
    gy = rng.standard_normal(out_shape)
    y.backward(gy)
    av, bv = np.broadcast_to(a.numpy(), out_shape), np.broadcast_to(b.numpy(), out_shape)
    da, db = {"add": (gy, gy), "sub": (gy, -gy), "mul": (gy * bv, gy * av),
              "div": (gy / bv, -gy * av / bv ** 2)}[op]
    # sum the broadcast copies back: this is what sum_to must do
    def reduce(g, shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
        return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad, reduce(da, sa), rtol=1e-12)
    np.testing.assert_allclose(b.grad, reduce(db, sb), rtol=1e-12)


def test_broadcast_mismatch_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        t64(3, 4) + t64(5)


def test_scalar_operands_and_reverse_ops():
    x = t64(3)
    y = (2.0 - x) * 3 + 1 / (x * x + 1) - (-x)
    y.sum().backward()
    xv = x.data
    np.testing.assert_allclose(x.grad, -3 - 2 * xv / (xv ** 2 + 1) ** 2 + 1, rtol=1e-12)


def test_ndarray_left_operand_dispatches_to_tensor():
    x = t64(3)
    y = np.ones(3) + x
    assert isinstance(y, tp.Tensor) and y.requires_grad
    z = np.full(3, 2.0) * x
    z.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0, 2.0])


# ---------------------------------------------------------------------------
# modes: no_grad, detach
# ---------------------------------------------------------------------------
def test_no_grad_records_nothing():
    x = t64(3)
    with tp.no_grad():
        assert not tp.is_grad_enabled()
        y = x * 2 + 1
        with tp.enable_grad():
            z = x * 2
    assert tp.is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad and z.creator is not None
    np.testing.assert_allclose(y.data, 2 * x.data + 1)


def test_no_grad_conv_keeps_no_columns():
    x, w = t64(1, 2, 5, 5), t64(3, 2, 3, 3)
    with tp.no_grad():
        y = F.conv2d(x, w)
    assert not y.requires_grad and y.creator is None


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with tp.no_grad():
            1 / 0
    assert tp.is_grad_enabled()


def test_detach():
    x = t64(3)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    assert d.data is y.data  # shares storage
    z = (d * x).sum()
    z.backward()
    np.testing.assert_allclose(x.grad, y.data)  # no gradient through the detached branch


# ---------------------------------------------------------------------------
# second backward, retain_graph, accumulation
# ---------------------------------------------------------------------------
def test_second_backward_raises_graph_freed():
    x = t64(3)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph"):
        loss.backward()


def test_retain_graph_accumulates_doubled():
    x = t64(3)
    loss = (F.exp(x) * x).sum()
    loss.backward(retain_graph=True)
    g1 = x.grad.copy()
    np.testing.assert_allclose(g1, np.exp(x.data) * (1 + x.data), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * g1, rtol=1e-12)
    with pytest.raises(GraphFreedError):
        loss.backward()


def test_accumulation_across_two_passes():
    x = t64(4)
    w = t64(4)
    (x * w).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, w.data + 2 * x.data, rtol=1e-12)
    np.testing.assert_allclose(w.grad, x.data, rtol=1e-12)
    x.zero_grad()
    assert x.grad is None


def test_leaf_grad_is_not_aliased_to_upstream():
    x = t64(3)
    g = np.ones(3)
    (x + 0.0).backward(g)
    x.grad += 1  # must not write into g
    np.testing.assert_array_equal(g, np.ones(3))


def test_graph_freed_after_backward():
    x = t64(2, 3, 6, 6)
    w = t64(4, 3, 3, 3)
    y = F.conv2d(x, w, padding=1)
    conv_fn = y.creator
    assert conv_fn.x is not None and len(conv_fn.inputs) == 2
    h = F.relu(y)
    h_ref = weakref.ref(h)
    y_ref = weakref.ref(y)
    loss = (h * h).sum()
    del y, h
    gc.collect()
    assert h_ref() is not None and y_ref() is not None  # kept alive by the graph
    loss.backward()
    assert conv_fn.freed and conv_fn.x is None and conv_fn.inputs == ()
    gc.collect()
    assert h_ref() is None and y_ref() is None  # intermediates collected
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


def test_retain_graph_keeps_saved_arrays():
    x, w = t64(1, 2, 5, 5), t64(3, 2, 3, 3)
    y = F.conv2d(x, w)
    y.sum().backward(retain_graph=True)
    assert not y.creator.freed and len(y.creator.inputs) == 2


# ---------------------------------------------------------------------------
# repr and dtypes
# ---------------------------------------------------------------------------
def test_repr():
    x = tp.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    r = repr(x * 2)
    assert "shape=(2, 3)" in r and "float32" in r and "op=Mul" in r and "requires_grad=True" in r
    assert "op=" not in repr(x)
    assert repr(tp.tensor([1.0], name="w")).startswith("Tensor('w'")


def test_python_floats_become_float32():
    assert tp.tensor([1.0, 2.0]).dtype == np.float32
    assert tp.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert tp.tensor([1.0], dtype=np.float64).dtype == np.float64


def test_float32_preserved_with_python_scalars():
    x = tp.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    outs = [2 * x, x * 2, x + 1, 1 - x, x / 3, 3 / (x * x + 1), x ** 2, -x, F.mean(x),
            F.max(x, axis=1), F.maximum(x, 0.0), F.relu(x), F.exp(x)]
    for y in outs:
        assert y.dtype == np.float32, y
    loss = outs[0]
    for y in outs[1:]:
        loss = loss.sum() + y.sum()
    loss.backward()
    assert x.grad.dtype == np.float32


def test_scalar_results_are_arrays():
    x = t64(3)
    s = x.sum()
    assert s.shape == () and hasattr(s.data, "ndim")
    assert isinstance(s.item(), float)
    np.testing.assert_allclose(s.numpy(), x.data.sum())


def test_tensor_methods():
    x = t64(2, 3)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.T.shape == (3, 2) and x.transpose(1, 0).shape == (3, 2)
    assert x[0].shape == (3,) and len(x) == 2 and x.ndim == 2 and x.size == 6
    assert (x @ t64(3, 4)).shape == (2, 4)
    np.testing.assert_allclose(x.mean(axis=0).data, x.data.mean(axis=0))
    np.testing.assert_allclose(x.max().data, x.data.max())
    np.testing.assert_allclose(x.exp().log().data, x.data, rtol=1e-12)


def test_leaf_gradients_are_kept_without_a_copy_unless_shared_and_slots_are_filled_in_place():
    """tensor.py keeps a fresh gradient as the leaf's .grad (no copy); one an op hands on
    (Add returns gy to both inputs) is copied, so the two leaves never share an array; a leaf
    with a grad_slot (optim/flat.py) receives its gradient there, and a second backward adds
    into it."""
    import tinyproj as tp
    a = tp.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tp.tensor(np.ones(3, np.float32), requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad += 1
    np.testing.assert_array_equal(backend.to_numpy(b.grad), np.ones(3, np.float32))
    slot = backend.xp().zeros(3, dtype=np.float32)
    c = tp.tensor(np.full(3, 2.0, np.float32), requires_grad=True)
    c.grad_slot = slot
    y = (c * c).sum()
    y.backward(retain_graph=True)
    assert c.grad is slot
    np.testing.assert_array_equal(backend.to_numpy(slot), np.full(3, 4.0, np.float32))
    y.backward()
    assert c.grad is slot
    np.testing.assert_array_equal(backend.to_numpy(slot), np.full(3, 8.0, np.float32))
