"""Function, the base class of every differentiable operation, and the tensor constructors.

A Function is one node of the autograd graph. Calling it (``Mul()(a, b)``) runs its
``forward`` on the input arrays and wraps the results as Tensors; when gradients are
wanted (:func:`~tinyproj.grad_mode.is_grad_enabled` and an input with
``requires_grad``) it records itself as their ``creator`` with its inputs and its
*generation* (the newest input's generation; each output is one more). ``Tensor.backward``
in ``tensor.py`` later calls its ``backward`` with the upstream gradients and, unless
``retain_graph``, frees it. The ops themselves live in ``tinyproj/functional/``.

Also here: :func:`as_array` and :func:`as_tensor` (what ops do with their arguments) and
:func:`tensor` (make a leaf). ``tensor.py`` re-exports all four names, so
``from tinyproj.tensor import Function`` works; ``grad_mode.py`` holds ``no_grad``.
"""
from __future__ import annotations

import weakref

from . import backend
from .grad_mode import is_grad_enabled
from .tensor import Tensor   # tensor.py imports this file at its end, once Tensor exists

__all__ = ["Function", "as_array", "as_tensor", "tensor"]


class Function:
    """Base class of every differentiable operation.

    Subclasses implement

        forward(*arrays)  -> array or tuple of arrays
        backward(*grads)  -> array or tuple of arrays, one per input
                             (None for an input that takes no gradient)

    and may save what backward needs on ``self`` (e.g. ``self.cols``).
    During backward, ``self.grad_slots[i]`` is an array of input i's shape where that
    input's gradient may be written directly (a leaf's slot in an optimizer's flat
    gradient buffer, optim/flat.py), or None; an op that uses it returns that array.
    ``self.inputs`` holds the input Tensors, ``self.needs_grad`` a tuple of
    booleans saying which inputs want a gradient (so backward can skip work).
    Call an instance like a function: ``Mul()(a, b)``.
    """

    freed = False

    def __call__(self, *inputs):
        inputs = tuple(as_tensor(x) for x in inputs)
        self.needs_grad = tuple(x.requires_grad for x in inputs)
        record = is_grad_enabled() and any(self.needs_grad)
        self.recording = record
        ys = self.forward(*[x.data for x in inputs])
        if not isinstance(ys, tuple):
            ys = (ys,)
        # NumPy reductions return scalars (np.float32), not arrays: make every output an array
        ys = tuple(backend.xp_of(y).asarray(y) for y in ys)
        outputs = tuple(Tensor(y, requires_grad=record) for y in ys)
        if record:
            self.generation = max(x.generation for x in inputs)
            self.inputs = inputs
            # weak references: a Tensor keeps its creator alive, not the other way round
            self.outputs = tuple(weakref.ref(out) for out in outputs)
            self.output_meta = tuple((y.shape, y.dtype) for y in ys)
            for out in outputs:
                out.set_creator(self)
        else:
            self.release()  # nothing will call backward: drop what forward saved
        return outputs if len(outputs) > 1 else outputs[0]

    @property
    def name(self):
        """The op's name as shown in a Tensor's repr (the class name)."""
        return type(self).__name__

    def forward(self, *xs):
        raise TypeError(f"{type(self).__name__} must implement forward(*arrays)")

    def backward(self, *gys):
        raise TypeError(f"{type(self).__name__} has no backward(*grads): it is not differentiable")

    def release(self):
        """Drop the arrays saved for backward (overridden by ops that save large buffers)."""
        for key in [k for k, v in vars(self).items() if hasattr(v, "shape") and hasattr(v, "dtype")]:
            setattr(self, key, None)

    def free(self):
        """Free this node after backward: drop saved arrays and the links to inputs/outputs."""
        self.release()
        self.inputs = ()
        self.outputs = ()
        self.freed = True


def as_array(x, like=None):
    """``x`` as an array; Python scalars take the dtype of ``like`` (so 2*x stays float32)."""
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    if like is not None:
        xp = backend.xp_of(like)
        return xp.asarray(x, dtype=like.dtype if like.dtype.kind == "f" else None)
    return backend.asarray(x)


def as_tensor(x, like=None) -> Tensor:
    """Wrap arrays and numbers as (constant) Tensors; Tensors pass through."""
    if isinstance(x, Tensor):
        return x
    return Tensor(as_array(x, like))


def tensor(data, requires_grad: bool = False, dtype=None, name: str | None = None) -> Tensor:
    """Make a leaf Tensor from a list, scalar or array on the backend in use.

    Python floats become float32 (the framework default); pass ``dtype`` to choose.
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = backend.asarray(data, dtype=dtype)
    return Tensor(arr, requires_grad=requires_grad, name=name)
