"""Tensor and the autograd graph (define-by-run).

Every operation on :class:`Tensor` objects runs a :class:`Function`. The function
computes its output arrays in ``forward`` and, if gradients are wanted, records
itself as the output's ``creator`` together with its inputs. The graph is
therefore built while the code runs ("define-by-run") and

    loss.backward()

walks it backwards. Functions are visited in decreasing *generation* order (a
function's generation is that of its newest input; its outputs get one more), which is a
topological order: a function's ``backward`` runs only after every function
that consumed its output has passed its gradient down.

Gradients are plain arrays (``tensor.grad`` is a numpy/cupy array), not Tensors:
tinyproj differentiates once, it does not build graphs of gradients.

Second ``backward()``
    Gradients **accumulate** into ``.grad`` of leaf tensors (call
    ``zero_grad()`` on the optimizer or set ``p.grad = None`` between steps).
    After ``backward()`` the graph below the output is **freed** (each function
    drops its saved arrays and inputs) so the memory of the step is released.
    A second ``backward()`` through a freed graph raises :class:`GraphFreedError`;
    pass ``retain_graph=True`` to the first call to keep the graph and be able to
    call ``backward()`` again (the second call adds the same gradients again).

Where to put a breakpoint
    ``Tensor.backward`` below (the loop over ``funcs``) sees every function of
    the graph in the order backpropagation visits it; ``Function.backward`` of
    one op (e.g. ``functional/conv.py``) sees that op's upstream gradient.

Where the rest lives
    This file holds :class:`Tensor`, ``backward`` (with the helpers that let a leaf keep
    its gradient without a copy) and :class:`GraphFreedError`. The :class:`Function`
    base class and the constructors ``as_array``, ``as_tensor`` and ``tensor`` are in
    ``function.py``; ``no_grad``, ``enable_grad`` and ``is_grad_enabled`` in
    ``grad_mode.py``. All of them are re-exported here (``from tinyproj.tensor import
    Function`` works).
"""
from __future__ import annotations

import heapq

from . import backend
from .grad_mode import enable_grad, is_grad_enabled, no_grad  # re-exported

__all__ = ["Tensor", "Function", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "GraphFreedError", "as_tensor", "as_array"]


class GraphFreedError(RuntimeError):
    """Raised by a second ``backward()`` through a graph that the first one freed."""


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------
class Tensor:
    """An array plus what autograd needs: ``grad``, ``requires_grad`` and ``creator``.

    Attributes
        data : numpy or cupy array holding the values.
        grad : array of the same shape, filled by ``backward()`` (None before).
        requires_grad : whether gradients flow to (and are stored on) this tensor.
        creator : the :class:`Function` that produced it (None for leaves).
        generation : depth in the graph, used to order backward.
    """

    __array_priority__ = 200  # make ndarray + Tensor call Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            data = backend.asarray(data)
        elif backend.on_device() and not backend.is_gpu_array(data):
            data = backend.to_device(data, "gpu")    # a Tensor lives on the backend in use
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.generation = 0
        self.name = name

    # -- basic properties -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self.creator is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        op = f", op={self.creator.name}" if self.creator is not None else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        name = f"{self.name!r}, " if self.name else ""
        return f"Tensor({name}shape={tuple(self.shape)}, dtype={self.dtype}{op}{grad})"

    def numpy(self):
        """The values as a NumPy array on the host (a copy for GPU tensors)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        return self.data.item()

    def detach(self) -> "Tensor":
        """A new leaf tensor sharing this one's data, cut off from the graph."""
        return Tensor(self.data, requires_grad=False)

    def zero_grad(self):
        self.grad = None

    def set_creator(self, func: "Function"):
        self.creator = func
        self.generation = func.generation + 1

    # -- backpropagation ---------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False):
        """Backpropagate from this tensor, accumulating into ``.grad`` of the leaves.

        grad : upstream gradient, same shape as this tensor; defaults to ones,
               which for a scalar loss L gives dL/dx on every leaf x.
        retain_graph : keep the graph so that backward can run through it again.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of its "
                "inputs had requires_grad=True, or it was computed under no_grad()."
            )
        xp = backend.xp_of(self.data)
        if grad is None:
            grad = xp.ones_like(self.data)
        elif isinstance(grad, Tensor):
            grad = grad.data
        if backend.is_gpu_array(grad) != backend.is_gpu_array(self.data):
            grad = backend.to_device(grad, "gpu" if backend.is_gpu_array(self.data) else "cpu")
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad has shape {grad.shape}, expected {self.shape}")
        if self.creator is None:  # a leaf: its gradient is the upstream gradient
            self._accumulate(grad)
            return
        if self.creator.freed:
            raise GraphFreedError(
                "backward() through a graph that was already freed by an earlier backward(). "
                "Pass retain_graph=True to the first backward() to run it twice."
            )

        # Gradients of non-leaf tensors are kept here, not on the tensors, so
        # that intermediate gradients are freed as soon as they have been used.
        # Each entry also holds the tensor itself: freeing a function drops its
        # links to its inputs, and a tensor must live until its gradient is used.
        grads = {id(self): (self, grad)}
        funcs, seen = [], set()

        def push(func):
            if func is not None and id(func) not in seen:
                seen.add(id(func))
                heapq.heappush(funcs, (-func.generation, id(func), func))

        push(self.creator)
        while funcs:
            _, _, func = heapq.heappop(funcs)          # newest generation first
            outs = [ref() for ref in func.outputs]       # weak refs: None if collected
            gys = [grads.pop(id(out), (None, None))[1] if out is not None else None
                   for out in outs]
            if all(g is None for g in gys):
                continue
            gys = [g if g is not None else xp.zeros(shape, dtype)
                   for g, (shape, dtype) in zip(gys, func.output_meta)]
            if func.freed:
                raise GraphFreedError("backward() reached a function whose graph was freed.")
            func.grad_slots = _free_slots(func.inputs)
            gxs = func.backward(*gys)                    # <- the op's own chain rule
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            shared = _shared_arrays(gys, gxs, retain_graph)
            for x, gx in zip(func.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if gx.shape != x.shape:
                    raise RuntimeError(f"{func.name}.backward returned grad of shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                if x.creator is None:
                    x._accumulate(gx, owned=id(gx) not in shared)
                else:
                    prev = grads.get(id(x), (None, None))[1]
                    grads[id(x)] = (x, gx if prev is None else prev + gx)
                    push(x.creator)
            if not retain_graph:
                func.free()

    def _accumulate(self, g, owned: bool = False):
        """Add the gradient ``g`` into ``self.grad`` (a leaf).

        owned: ``g`` is a fresh array nobody else holds (see :func:`_shared_arrays`), so the
        leaf may keep it as it is instead of copying it. A leaf with a ``grad_slot`` (a view
        into an optimizer's flat gradient buffer, optim/flat.py) receives its gradient
        there, so that the optimizer updates every parameter in one launch.
        """
        if g is None:
            return
        slot = getattr(self, "grad_slot", None)
        if slot is not None and not (slot.shape == g.shape and slot.dtype == g.dtype
                                     and backend.is_gpu_array(slot) == backend.is_gpu_array(g)):
            slot = None
        if self.grad is None:
            if slot is not None and g is slot:    # the op wrote it there (Function.grad_slots)
                self.grad = slot
            elif slot is not None:
                slot[...] = g                     # the gather into the flat buffer
                self.grad = slot
            else:
                self.grad = g if owned else g.copy()
        elif slot is not None and self.grad is slot:
            slot += g                             # a second backward adds, in place
        else:
            self.grad = self.grad + g

    # -- operators (implemented in tinyproj.functional) --------------------
    def __add__(self, other):
        return _F().add(self, other)

    def __radd__(self, other):
        return _F().add(other, self)

    def __sub__(self, other):
        return _F().sub(self, other)

    def __rsub__(self, other):
        return _F().sub(other, self)

    def __mul__(self, other):
        return _F().mul(self, other)

    def __rmul__(self, other):
        return _F().mul(other, self)

    def __truediv__(self, other):
        return _F().div(self, other)

    def __rtruediv__(self, other):
        return _F().div(other, self)

    def __neg__(self):
        return _F().neg(self)

    def __pow__(self, exponent):
        return _F().pow(self, exponent)

    def __matmul__(self, other):
        return _F().matmul(self, other)

    def __rmatmul__(self, other):
        return _F().matmul(other, self)

    def __getitem__(self, index):
        return _F().getitem(self, index)

    def sum(self, axis=None, keepdims=False):
        return _F().sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _F().mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _F().max(self, axis, keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _F().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _F().transpose(self, axes or None)

    @property
    def T(self):
        return _F().transpose(self, None)

    def exp(self):
        return _F().exp(self)

    def log(self):
        return _F().log(self)


def _F():
    from . import functional  # late import: functional is built on this module
    return functional


def _free_slot(x):
    """The empty gradient slot of a leaf (optim/flat.py), which the op about to run backward
    may fill with that leaf's gradient directly, or None."""
    slot = getattr(x, "grad_slot", None)
    if slot is None or x.creator is not None or x.grad is not None or not x.requires_grad:
        return None
    return slot


def _free_slots(inputs) -> tuple:
    """``_free_slot`` of each input; a tensor given twice gets its slot once (the first time),
    so that an op never writes two gradients into one slot."""
    seen, slots = set(), []
    for x in inputs:
        slots.append(None if id(x) in seen else _free_slot(x))
        seen.add(id(x))
    return tuple(slots)


def _shared_arrays(gys, gxs, retain_graph) -> set:
    """ids of the gradients in ``gxs`` that a leaf must copy rather than keep.

    A gradient an op returns is usually a fresh array that only this backward pass holds;
    a leaf can keep it as its ``.grad`` (no copy, no launch). It must be copied when the op
    handed on an array it received (``Add`` returns gy for both inputs), returned one array
    for two inputs, returned a view (of gy or of a saved array), or when the graph is
    retained (a second backward may return the same saved array again).
    """
    if retain_graph:
        return {id(g) for g in gxs}
    seen, shared = set(), {id(g) for g in gys}
    for g in gxs:
        if g is None:
            continue
        if id(g) in seen or getattr(g, "base", None) is not None:
            shared.add(id(g))
        seen.add(id(g))
    return shared


# Re-exported so that ``from tinyproj.tensor import Function, as_tensor`` keeps working.
# Imported last, not at the top: function.py builds Tensors, so it imports Tensor from
# this module, which must be defined by then.
from .function import Function, as_array, as_tensor, tensor  # noqa: E402
